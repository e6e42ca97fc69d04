"""Prometheus metrics about Slurm and the pods' cost (scraped by the stack's Prometheus with the API token)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from .. import costs
from ..metrics import render, snapshot
from ..services import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response,
            summary="gpuops_slurm_* (read from slurmrestd now) and gpuops_cost_* (from the cloud now) metrics",
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(svc: ServicesDep) -> Response:
    slurm, running = await asyncio.gather(snapshot(svc.slurm, svc.clock), costs.running_pods(svc.fleet))
    # Two registries' expositions, one after the other: their metric names differ.
    return Response(render(slurm) + costs.render(running), media_type=CONTENT_TYPE_LATEST)
