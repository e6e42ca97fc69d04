"""What the deployment costs: the running pods now, for Prometheus (/metrics), which the spend-above-budget
alerts read; and what Slurm's jobs cost, per user and per UTC day (GET /api/v1/spend, gpuops_slurm_spend_usd)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import UpstreamError
from .fleet import Fleet
from .slurmdata import Job


def utc_day(epoch: float) -> str:
    """YYYY-MM-DD of a time, in UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def spend_day(job: Job, now: float) -> str:
    """The UTC day a job's cost counts on: the day it ended, or while it runs the day it started."""
    return utc_day(job.end_time or job.start_time or now)


def spend_by_day_and_user(jobs: Iterable[Job], now: float) -> dict[tuple[str, str], float]:
    """The jobs' cost (USD, 4 decimals) per (UTC day, user); jobs without a recorded price count nowhere."""
    spend: dict[tuple[str, str], float] = defaultdict(float)
    for job in jobs:
        if job.cost_usd is not None:
            spend[spend_day(job, now), job.user] += job.cost_usd
    return {key: round(usd, 4) for key, usd in sorted(spend.items())}


async def running_pods(fleet: Fleet) -> list[dict[str, Any]] | None:
    """The running pods (name, cost_per_hr, ...), or None when the cloud or the pods file cannot be read."""
    try:
        pods = await fleet.pods()
    except (UpstreamError, OSError, ValueError):
        return None
    return [pod for pod in pods if pod["status"] == "RUNNING"]


class CostCollector(Collector):
    """gpuops_cost_usd_per_hour (the running pods together) and per pod, as the cloud bills them (USD/h)."""

    def __init__(self, running: list[dict[str, Any]] | None) -> None:
        self.running = running

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gpuops_cloud_up", "1 when the cloud and the pods file were read this scrape",
                                value=0 if self.running is None else 1)
        if self.running is None:
            return
        yield GaugeMetricFamily("gpuops_cost_usd_per_hour", "What the running pods cost together, USD per hour",
                                value=round(sum(pod["cost_per_hr"] or 0 for pod in self.running), 4))
        per_pod = GaugeMetricFamily("gpuops_pod_cost_usd_per_hour", "What each running pod costs, USD per hour",
                                    labels=["pod", "pod_id", "gpu_type"])
        for pod in sorted(self.running, key=lambda p: p["name"]):
            per_pod.add_metric([pod["name"], pod["id"], pod["gpu_type"] or ""], pod["cost_per_hr"] or 0)
        yield per_pod


def render(running: list[dict[str, Any]] | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CostCollector(running))
    return generate_latest(registry)
