"""Liveness and readiness (no token needed; without one, readiness says only which upstreams answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ..auth import optional_token
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
            description="Without a token: booleans only. With the API token: each upstream's detail too "
                        "(addresses, errors). A wrong token answers 401.",
            responses={503: {"model": Readiness, "description": "Some upstream does not answer"}})
async def readyz(svc: ServicesDep, authorized: bool = Depends(optional_token)) -> JSONResponse:
    prometheus, slurmrestd, cloud = await asyncio.gather(
        _check(svc.prometheus.ready()), _check(svc.slurm.ping()), _check(svc.cloud.ping()))
    upstreams = {"prometheus": prometheus, "slurmrestd": slurmrestd, "cloud": cloud}
    ready = all(check["ok"] for check in upstreams.values())
    if not authorized:
        # Anonymous callers learn only up/down: no file paths, addresses or upstream errors.
        upstreams = {name: {"ok": check["ok"]} for name, check in upstreams.items()}
    return JSONResponse({"ready": ready, "upstreams": upstreams}, status_code=200 if ready else 503)
