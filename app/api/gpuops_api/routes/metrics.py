"""Prometheus metrics about Slurm (scraped by the stack's Prometheus with the API token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..metrics import render, snapshot
from ..services import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="gpuops_slurm_* metrics, read from slurmrestd now",
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(svc: ServicesDep) -> Response:
    return Response(render(await snapshot(svc.slurm)), media_type=CONTENT_TYPE_LATEST)
