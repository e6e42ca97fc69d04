"""Slurm metrics for Prometheus (/metrics), read from slurmrestd at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import UpstreamError
from .slurmdata import METRIC_JOB_STATES, METRIC_NODE_STATES, Job, Node
from .upstreams.slurm import SlurmClient


@dataclass
class SlurmSnapshot:
    """What one scrape saw; `up` False when slurmrestd could not be read."""

    up: bool
    nodes: list[Node] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


async def snapshot(slurm: SlurmClient) -> SlurmSnapshot:
    try:
        nodes = await slurm.nodes()
        jobs = await slurm.jobs()
    except UpstreamError:
        return SlurmSnapshot(up=False)
    return SlurmSnapshot(up=True, nodes=nodes, jobs=jobs)


class SlurmCollector(Collector):
    """Turns a snapshot into gpuops_slurm_* gauges (the names the gpuops-slurm dashboard uses)."""

    def __init__(self, snap: SlurmSnapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gpuops_slurm_up", "1 when slurmrestd answered this scrape, else 0",
                                value=1 if self.snap.up else 0)
        if not self.snap.up:
            return
        nodes = GaugeMetricFamily("gpuops_slurm_nodes", "Slurm nodes by state", labels=["state"])
        for state, count in _counts((n.state for n in self.snap.nodes), METRIC_NODE_STATES):
            nodes.add_metric([state], count)
        yield nodes
        jobs = GaugeMetricFamily("gpuops_slurm_jobs", "Slurm jobs by state (finished jobs stay MinJobAge seconds)",
                                 labels=["state"])
        for state, count in _counts((j.state.lower() for j in self.snap.jobs), METRIC_JOB_STATES):
            jobs.add_metric([state], count)
        yield jobs
        pending = GaugeMetricFamily("gpuops_slurm_pending_jobs", "Pending Slurm jobs by reason", labels=["reason"])
        for reason, count in sorted(Counter(j.reason or "None" for j in self.snap.jobs
                                            if j.state == "PENDING").items()):
            pending.add_metric([reason], count)
        yield pending
        yield GaugeMetricFamily("gpuops_slurm_gpus_allocated", "GPUs allocated to jobs",
                                value=sum(n.gpus_allocated for n in self.snap.nodes))
        yield GaugeMetricFamily("gpuops_slurm_gpus_total", "GPUs configured on the Slurm nodes",
                                value=sum(n.gpus_total for n in self.snap.nodes))
        # Jobs slurmctld knows now (running, pending, finished within MinJobAge): a bounded set of series.
        cost = GaugeMetricFamily("gpuops_slurm_job_cost_usd", "A job's GPU-hours times the price per GPU-hour "
                                 "recorded when it was allocated (up to now while it runs), USD",
                                 labels=["job_id", "user", "state"])
        for job in sorted(self.snap.jobs, key=lambda j: j.id):
            if job.cost_usd is not None:
                cost.add_metric([str(job.id), job.user, job.state.lower()], job.cost_usd)
        yield cost


def _counts(values: Iterator[str], always: tuple[str, ...]) -> list[tuple[str, int]]:
    counts = Counter(values)
    return [(state, counts.get(state, 0)) for state in always] + sorted(
        (state, count) for state, count in counts.items() if state not in always)


def render(snap: SlurmSnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SlurmCollector(snap))
    return generate_latest(registry)
