"""Liveness and readiness (no token needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..errors import UpstreamError
from ..models import Health, Readiness
from ..services import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(probe: Awaitable[str]) -> dict[str, object]:
    try:
        return {"ok": True, "detail": await probe}
    except UpstreamError as err:
        return {"ok": False, "detail": err.detail}


@router.get("/readyz", response_model=Readiness, summary="Every upstream answers",
            responses={503: {"model": Readiness, "description": "Some upstream does not answer"}})
async def readyz(svc: ServicesDep) -> JSONResponse:
    prometheus, slurmrestd, cloud = await asyncio.gather(
        _check(svc.prometheus.ready()), _check(svc.slurm.ping()), _check(svc.cloud.ping()))
    upstreams = {"prometheus": prometheus, "slurmrestd": slurmrestd, "cloud": cloud}
    ready = all(check["ok"] for check in upstreams.values())
    return JSONResponse({"ready": ready, "upstreams": upstreams}, status_code=200 if ready else 503)
