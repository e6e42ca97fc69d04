"""What this API serves: version, cloud and Grafana links."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .. import __version__
from ..models import Info
from ..services import ServicesDep

router = APIRouter(tags=["info"])

DASHBOARDS = {"fleet": "gpuops-gpu-fleet", "jobs": "gpuops-gpu-jobs", "slurm": "gpuops-slurm"}


@router.get("/info", response_model=Info, summary="Version, cloud and dashboard links (while Grafana answers)")
async def info(svc: ServicesDep) -> dict[str, Any]:
    # Links only while Grafana answers: offline, or when it is down, the app shows none.
    grafana = svc.settings.grafana_url if await svc.grafana.available() else None
    return {
        "version": __version__,
        "cloud": svc.settings.cloud,
        "grafana_url": grafana,
        "dashboards": {key: f"{grafana}/d/{uid}" for key, uid in DASHBOARDS.items()} if grafana else {},
    }
