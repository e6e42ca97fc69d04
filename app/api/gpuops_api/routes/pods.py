"""The deployment's pods."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from ..models import NAME_PATTERN, ErrorBody, Pod, PodList
from ..services import ServicesDep

router = APIRouter(tags=["pods"])


@router.get("/pods", response_model=PodList, summary="Every pod of the deployment, with status and cost")
async def list_pods(svc: ServicesDep) -> dict[str, Any]:
    pods = await svc.fleet.pods()
    total = sum(pod["cost_per_hr"] for pod in pods if pod["status"] == "RUNNING")
    return {"pods": pods, "cost_per_hr_total": round(total, 4)}


@router.get("/pods/{name}", response_model=Pod, summary="One pod by name",
            responses={404: {"model": ErrorBody, "description": "No pod of that name"}})
async def get_pod(name: Annotated[str, Path(pattern=NAME_PATTERN)], svc: ServicesDep) -> dict[str, Any]:
    pod = await svc.fleet.pod(name)
    if pod is None:
        raise HTTPException(404, f"no pod named {name!r} in this deployment")
    return pod
