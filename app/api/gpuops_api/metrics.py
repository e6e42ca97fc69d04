"""Slurm metrics for Prometheus (/metrics), read from slurmrestd at scrape time.

slurmctld gives the nodes and the jobs it knows now (running, pending,
finished within MinJobAge); Slurm's accounting (slurmdbd) gives the jobs of
the last SPEND_DAYS UTC days (both through jobhistory's JobHistory, which
keeps what no longer changes and reads only what can have), for the spend per day and user
(gpuops_slurm_spend_usd, as GET /api/v1/spend counts it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .costs import spend_by_day_and_user, utc_day
from .errors import UpstreamError
from .jobhistory import JobFilter, history, merge
from .slurmdata import METRIC_JOB_STATES, METRIC_NODE_STATES, Job, Node
from .upstreams.slurm import SlurmClient

#: UTC days of spend in gpuops_slurm_spend_usd: today and the 6 before (one series per day and user).
SPEND_DAYS = 7


@dataclass
class SlurmSnapshot:
    """What one scrape saw; `up` False when slurmrestd could not be read. `spend`: USD per (UTC day, user) over
    the last SPEND_DAYS days, None when Slurm's accounting could not be read (or the API does not read it)."""

    up: bool
    nodes: list[Node] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    spend: dict[tuple[str, str], float] | None = None


def spend_window(now: float) -> int:
    """Epoch seconds of 00:00 UTC, SPEND_DAYS - 1 days before today."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((today - timedelta(days=SPEND_DAYS - 1)).timestamp())


async def snapshot(slurm: SlurmClient, clock: Callable[[], float] = time.time) -> SlurmSnapshot:
    now = clock()
    since = spend_window(now)

    kept = history(slurm)

    async def accounted() -> list[Job] | None:
        try:
            if await slurm.accounting() is None:
                return None  # a Slurm whose accounting the API does not read (v0.0.38 to v0.0.41)
            return await kept.accounted_jobs(since, int(now) + 1, int(now))
        except UpstreamError:
            return None  # slurmdbd down: the rest of the metrics still tell

    try:
        await slurm.prefix()  # the OpenAPI version, asked once, before the reads below run together
        nodes, jobs, accounted_jobs = await asyncio.gather(slurm.nodes(), kept.live(), accounted())
    except UpstreamError:
        return SlurmSnapshot(up=False)
    spend = None
    if accounted_jobs is not None:
        first = utc_day(since)
        spend = {key: usd for key, usd in spend_by_day_and_user(merge(jobs, accounted_jobs, JobFilter(since=since)),
                                                                 now).items() if key[0] >= first}
    return SlurmSnapshot(up=True, nodes=nodes, jobs=jobs, spend=spend)


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
        # Jobs slurmctld requeued (restart_cnt > 0); node: the node whose failure (its pod lost, or its tunnel
        # down past SlurmdTimeout) last requeued the job, "" for a requeue by hand (scontrol requeue).
        requeues = GaugeMetricFamily("gpuops_slurm_job_requeues", "How many times Slurm requeued a job it knows "
                                     "now (restart_cnt); node: the failed node that last requeued it",
                                     labels=["job_id", "user", "node"])
        for job in sorted(self.snap.jobs, key=lambda j: j.id):
            if job.requeues > 0:
                requeues.add_metric([str(job.id), job.user, job.failed_node or ""], job.requeues)
        yield requeues
        yield GaugeMetricFamily("gpuops_slurm_accounting_up", "1 when Slurm's accounting (slurmdbd through "
                                "slurmrestd) was read this scrape, else 0", value=0 if self.snap.spend is None else 1)
        if self.snap.spend is None:
            return
        spend = GaugeMetricFamily("gpuops_slurm_spend_usd", f"What the jobs cost per UTC day and user over the last "
                                  f"{SPEND_DAYS} days (USD; a job counts on the day it ended, while it runs on the "
                                  "day it started), as GET /api/v1/spend", labels=["day", "user"])
        for (day, user), usd in self.snap.spend.items():
            spend.add_metric([day, user], usd)
        yield spend


def _counts(values: Iterator[str], always: tuple[str, ...]) -> list[tuple[str, int]]:
    counts = Counter(values)
    return [(state, counts.get(state, 0)) for state in always] + sorted(
        (state, count) for state, count in counts.items() if state not in always)


def render(snap: SlurmSnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SlurmCollector(snap))
    return generate_latest(registry)
