"""The job list and job detail: Slurm's accounting (slurmdbd), with slurmctld's live view of the jobs it still knows.

slurmdbd keeps every job, so finished jobs stay listed after slurmctld forgets
them (MinJobAge). slurmctld's record of a job wins while slurmctld still knows
it: its state is live (slurmdbd learns of a change a moment later, and never of
flags such as COMPLETING), its reason too (slurmdbd keeps none), and it knows
the jobs slurmdbd leaves out (held jobs that were never eligible). The
filters are applied here, to both.

Reading both in full for every request costs seconds with a thousand jobs
(slurmctld's list is ~9 kB a job, slurmdbd's ~5 kB), so the API keeps them
(`JobHistory`, one per slurmrestd client) and reads only what can have
changed:

- slurmctld: its ids and states (``GET /jobs/state``, ~85 bytes a job), then
  the full record of each job that is still active, whose state changed, or
  that is new; a finished job's record no longer changes, so it is kept while
  slurmctld lists the job in the same state. With more than
  `MAX_SINGLE_READS` such jobs, the full list is read instead.
- slurmdbd: everything once, then, for each request, the jobs that were
  pending or running at some time since the last read (minus
  `ACCOUNTING_OVERLAP` seconds): every unfinished job, and each one that ended
  since. A job kept as unfinished that this window no longer returns ended
  before it (slurmdbd heard late): it is read again by id. Everything is read
  again every `ACCOUNTING_FULL_READ_SECONDS`, so that a change nothing of this
  notices (an administrator's edit of an old record) heals.

slurmdbd's own filter (the window [since, until), the state, the user) is
applied to the kept records as its SQL does (`accounting_selects`), so the
answers are those of asking slurmdbd each time.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .slurmdata import ACCOUNTED_STATES, Job
from .upstreams.slurm import SlurmClient

#: How often everything is read again from slurmdbd (seconds of the API's clock).
ACCOUNTING_FULL_READ_SECONDS = 300
#: How far before the last read a read of slurmdbd's changes starts (seconds), for a record slurmctld sends a moment
#: late. A job the API kept as unfinished that ended earlier is read again by id; one it never saw that slurmdbd
#: hears of later still is listed from slurmctld's view (MinJobAge) until the next full read.
ACCOUNTING_OVERLAP = 10
#: At most this many jobs are read one by one (slurmctld's active jobs, slurmdbd's late ones); beyond, the list.
MAX_SINGLE_READS = 16


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


@dataclass(frozen=True)
class Accounted:
    """A job as slurmdbd recorded it, and when it became eligible (0: never)."""

    job: Job
    eligible: int


def accounting_selects(record: Accounted, since: int, until: int, state: str | None = None,
                       user: str | None = None) -> bool:
    """Whether slurmdbd lists the job for ``/jobs?start_time=<since>&end_time=<until>[&state=][&users=]``: its SQL
    (as_mysql_jobacct_process.c: the window without a state, _state_time_string with one) on the job's times."""
    job = record.job
    if user is not None and job.user != user:
        return False
    since = max(since, 1)
    eligible, started, ended = record.eligible, job.start_time or 0, job.end_time or 0
    if state is None:
        return bool(eligible) and eligible < until and (ended >= since or ended == 0)
    if state == "PENDING":
        return bool(eligible) and until > eligible and (
            (bool(started) and since < started) or (not started and bool(ended) and since < ended)
            or (not started and not ended and job.state == "PENDING"))
    if state == "RUNNING":
        return bool(started) and (since < ended or (not ended and job.state == "RUNNING")) and until > started
    return job.state == state and bool(ended) and since <= ended <= until


class JobHistory:
    """What slurmctld and slurmdbd last said about the jobs, brought up to date by each read (see the module)."""

    def __init__(self, slurm: SlurmClient) -> None:
        self.slurm = slurm
        # slurmctld's records of finished jobs it still lists (they no longer change).
        self._finished: dict[int, Job] = {}
        # slurmdbd's records, the time (API clock) the last read of them started, the last full read's.
        self._accounted: dict[int, Accounted] = {}
        self._read_at: int | None = None
        self._full_read_at = 0
        self._live_lock = asyncio.Lock()
        self._accounting_lock = asyncio.Lock()
        # Requests that arrive while a read runs wait for it and then take the next one's answer, not a stale one.
        self._live_last: tuple[float, list[Job]] | None = None
        self._accounting_last: tuple[float, dict[int, Accounted]] | None = None

    # -- slurmctld ---------------------------------------------------------------------------------

    async def live(self) -> list[Job]:
        """Every job slurmctld knows now, as its records say."""
        arrived = time.monotonic()
        async with self._live_lock:
            if self._live_last is not None and self._live_last[0] >= arrived:
                return self._live_last[1]
            started = time.monotonic()
            jobs = await self._read_live()
            self._live_last = (started, jobs)
            return jobs

    async def _read_live(self) -> list[Job]:
        listed = await self.slurm.job_states()
        if listed is None:
            return await self._read_all_live()
        states: dict[int, str] = {}
        for job_id, state in listed:
            states.setdefault(job_id, state)
        self._finished = {job_id: job for job_id, job in self._finished.items() if states.get(job_id) == job.state}
        wanted = [job_id for job_id in states if job_id not in self._finished]
        if len(wanted) > MAX_SINGLE_READS:
            return await self._read_all_live()
        read = await asyncio.gather(*(self.slurm.job(job_id) for job_id in wanted))
        fresh = [job for job in read if job is not None]
        self._finished.update((job.id, job) for job in fresh if job.finished)
        fresh_ids = {job.id for job in fresh}
        return fresh + [job for job_id, job in self._finished.items() if job_id not in fresh_ids]

    async def _read_all_live(self) -> list[Job]:
        jobs = await self.slurm.jobs()
        self._finished = {job.id: job for job in jobs if job.finished}
        return jobs

    # -- slurmdbd ----------------------------------------------------------------------------------

    async def accounted(self, now: int) -> dict[int, Accounted]:
        """slurmdbd's record of every job it lists from the beginning up to `now` (epoch seconds)."""
        arrived = time.monotonic()
        async with self._accounting_lock:
            if self._accounting_last is not None and self._accounting_last[0] >= arrived:
                return self._accounting_last[1]
            started = time.monotonic()
            await self._read_accounting(now)
            self._accounting_last = (started, dict(self._accounted))
            return self._accounting_last[1]

    async def _read_accounting(self, now: int) -> None:
        until = now + 1
        if (self._read_at is None or now - self._full_read_at >= ACCOUNTING_FULL_READ_SECONDS
                or now < self._read_at):
            await self._read_all_accounting(now)
            return
        records = await self.slurm.accounted_records(self._read_at - ACCOUNTING_OVERLAP, until)
        changed = {job.id: Accounted(job, eligible) for job, eligible in records}
        # Unfinished jobs are in every window: one that is missing ended before this one (slurmdbd heard late).
        late = [job_id for job_id, record in self._accounted.items()
                if job_id not in changed and record.job.end_time is None]
        if len(late) > MAX_SINGLE_READS:
            await self._read_all_accounting(now)
            return
        for job_id, record in zip(late, await asyncio.gather(*(self.slurm.accounted_record(i) for i in late))):
            if record is None:
                self._accounted.pop(job_id, None)
            else:
                changed[job_id] = Accounted(*record)
        self._accounted.update(changed)
        self._read_at = now

    async def _read_all_accounting(self, now: int) -> None:
        records = await self.slurm.accounted_records(1, now + 1)
        self._accounted = {job.id: Accounted(job, eligible) for job, eligible in records}
        self._read_at = self._full_read_at = now

    async def accounted_jobs(self, since: int, until: int, now: int, state: str | None = None,
                             user: str | None = None) -> list[Job]:
        """What slurmdbd would answer ``accounted_jobs(since, until, state, user)`` with, from its kept records."""
        records = await self.accounted(now)
        return [record.job for record in records.values() if accounting_selects(record, since, until, state, user)]


_HISTORIES: weakref.WeakKeyDictionary[SlurmClient, JobHistory] = weakref.WeakKeyDictionary()


def history(slurm: SlurmClient) -> JobHistory:
    """The JobHistory of a slurmrestd client (one for the life of the client)."""
    found = _HISTORIES.get(slurm)
    if found is None:
        found = _HISTORIES[slurm] = JobHistory(slurm)
    return found


async def find_jobs(slurm: SlurmClient, wanted: JobFilter, clock: Callable[[], float]) -> list[Job]:
    """The jobs `wanted` selects, newest (highest id) first."""
    now = int(clock())
    until = wanted.until if wanted.until is not None else now + 1
    kept = history(slurm)
    # States slurmdbd does not store (COMPLETING, CONFIGURING...) exist only in slurmctld's live view.
    if await slurm.accounting() is not None and (wanted.state is None or wanted.state in ACCOUNTED_STATES):
        # Both at once: slurmctld and slurmdbd answer independently.
        live, accounted = await asyncio.gather(
            kept.live(), kept.accounted_jobs(wanted.since or 0, until, now, wanted.state, wanted.user))
    else:
        live, accounted = await kept.live(), []
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
