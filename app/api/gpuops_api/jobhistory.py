"""The job list and job detail: Slurm's accounting (slurmdbd), with slurmctld's live view of the jobs it still knows.

slurmdbd keeps every job, so finished jobs stay listed after slurmctld forgets
them (MinJobAge); it filters them itself (the window, the state, the user).
slurmctld's record of a job wins while slurmctld still knows it: its state is
live (slurmdbd learns of a change a moment later, and never of flags such as
COMPLETING), and it knows the jobs slurmdbd leaves out (held jobs that were
never eligible). Both are then checked against the same filters here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .slurmdata import ACCOUNTED_STATES, Job
from .upstreams.slurm import SlurmClient


@dataclass(frozen=True)
class JobFilter:
    """Jobs in `state` now, of `user`, pending or running at some time in [since, until) (epoch seconds)."""

    state: str | None = None
    user: str | None = None
    since: int | None = None
    until: int | None = None

    def matches(self, job: Job) -> bool:
        if self.state is not None and job.state != self.state:
            return False
        if self.user is not None and job.user != self.user:
            return False
        if self.until is not None and job.submit_time is not None and job.submit_time >= self.until:
            return False
        return self.since is None or job.end_time is None or job.end_time >= self.since


async def find_jobs(slurm: SlurmClient, wanted: JobFilter, clock: Callable[[], float]) -> list[Job]:
    """The jobs `wanted` selects, newest (highest id) first."""
    until = wanted.until if wanted.until is not None else int(clock()) + 1
    # States slurmdbd does not store (COMPLETING, CONFIGURING...) exist only in slurmctld's live view.
    if await slurm.accounting() is not None and (wanted.state is None or wanted.state in ACCOUNTED_STATES):
        # Both at once: slurmctld and slurmdbd answer independently.
        live, accounted = await asyncio.gather(
            slurm.jobs(), slurm.accounted_jobs(wanted.since or 0, until, wanted.state, wanted.user))
    else:
        live, accounted = await slurm.jobs(), []
    return merge(live, accounted, wanted)


def merge(live: Iterable[Job], accounted: Iterable[Job], wanted: JobFilter) -> list[Job]:
    """slurmdbd's jobs with slurmctld's record of each job it still knows instead, those `wanted` selects,
    newest (highest id) first."""
    found = {job.id: job for job in accounted}
    found.update((job.id, job) for job in live)
    return sorted((job for job in found.values() if wanted.matches(job)), key=lambda job: job.id, reverse=True)


async def find_job(slurm: SlurmClient, job_id: int) -> Job | None:
    """The job as slurmctld knows it, else as slurmdbd recorded it; None when neither does."""
    job = await slurm.job(job_id)
    if job is None:
        job = await slurm.accounted_job(job_id)
    return job
