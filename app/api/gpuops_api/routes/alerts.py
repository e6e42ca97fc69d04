"""The alerts firing now, from Alertmanager (the web app's banner)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..models import AlertList
from ..services import ServicesDep

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=AlertList,
            summary="Alerts firing now (Alertmanager's active alerts, neither silenced nor inhibited)")
async def list_alerts(svc: ServicesDep) -> dict[str, Any]:
    if svc.alertmanager is None:
        return {"configured": False, "alerts": []}
    return {"configured": True, "alerts": await svc.alertmanager.firing()}
