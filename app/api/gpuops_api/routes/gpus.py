"""GPU metrics from Prometheus: now, and over a time range."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from ..durations import DurationError, window
from ..gpus import GPU_QUERY, HISTORY_METRICS, gpu_rows, history_series, selector
from ..models import GpuList, History
from ..services import Services, ServicesDep

router = APIRouter(tags=["gpus"])

RangeParam = Annotated[str, Query(alias="range", max_length=32, description="Prometheus duration, 1m to 7d")]
StepParam = Annotated[str | None, Query(max_length=32, description="Prometheus duration, at least 5s "
                                                                     "(default: range / 120)")]


@router.get("/gpus", response_model=GpuList, summary="Every GPU's latest metrics")
async def list_gpus(svc: ServicesDep) -> dict[str, Any]:
    return {"gpus": gpu_rows(await svc.prometheus.query(GPU_QUERY, svc.clock()))}


async def history(svc: Services, range_: str, step: str | None, job_id: int | None = None) -> dict[str, Any]:
    try:
        span, step_seconds = window(range_, step)
    except DurationError as err:
        raise HTTPException(422, str(err)) from None
    end = int(svc.clock())
    start = end - span
    result = await svc.prometheus.query_range(selector(HISTORY_METRICS, job_id), start, end, step_seconds)
    return {"start": start, "end": end, "step": step_seconds, "series": history_series(result)}


@router.get("/gpus/history", response_model=History, summary="GPU metrics over a time range")
async def gpu_history(svc: ServicesDep, range_: RangeParam = "15m", step: StepParam = None) -> dict[str, Any]:
    return await history(svc, range_, step)
