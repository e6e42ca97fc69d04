"""Slurm jobs: list, inspect, submit, cancel, read their output and their GPUs' metrics."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from ..config import USER_NAME, Settings
from ..errors import UpstreamError
from ..jobhistory import JobFilter, find_job, find_jobs
from ..models import (NAME_PATTERN, ErrorBody, History, Job, JobCancelled, JobCreated, JobList, JobOutput, JobRequest,
                      Spend)
from ..services import Services, ServicesDep
from ..slurmdata import JOB_STATES, JobSpec
from ..slurmdata import Job as JobRecord
from ..upstreams.slurm import SlurmRefused
from .gpus import RangeParam, StepParam, history

router = APIRouter(tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Slurm does not know the job"}}
JobId = Annotated[int, Path(ge=1, le=4_294_967_294, description="Slurm job id")]
MAX_OUTPUT_LINES = 10_000
#: At most this many bytes of a kept output file are read (its end).
MAX_OUTPUT_BYTES = 2 * 1024 * 1024
#: A job directory's name directly under the pods' jobs root: what the slurm role's job directory Prolog
#: (job-dir-prolog.py.j2) makes for submit_job.yml's jobs.
_JOB_DIR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def output_directory(workdir: str | None, settings: Settings) -> str | None:
    """The job's own output directory: its working directory when that is the API's jobs' (job_output_dir) or
    a directory of its own directly under the pods' jobs root (submit_job.yml's <root>/<name>); None otherwise.

    A working directory with a ``..`` component is refused before normalising: the pod resolves it through
    whatever links its components are, which normpath does not know."""
    if not workdir or not workdir.startswith("/") or ".." in workdir.split("/"):
        return None
    api_dir = posixpath.normpath(settings.job_output_dir)
    root = posixpath.dirname(api_dir)
    directory = posixpath.normpath(workdir)
    if directory == api_dir:
        return directory
    parent, name = posixpath.split(directory)
    return directory if parent == root and root != "/" and _JOB_DIR_NAME.match(name) else None


def output_file(stdout_path: str, directory: str) -> str | None:
    """The job's output file, normalised, when it is inside `directory` (a relative path starts there, as Slurm
    opens it); None for one outside it, or with a ``..`` component."""
    if ".." in stdout_path.split("/"):
        return None
    path = posixpath.normpath(posixpath.join(directory, stdout_path))
    return path if path.startswith(directory + "/") else None


async def _job(svc: Services, job_id: int) -> JobRecord:
    job = await find_job(svc.slurm, job_id)
    if job is None:
        raise HTTPException(404, f"Slurm knows no job {job_id}: neither slurmctld nor its accounting (slurmdbd)")
    return job


@router.get("/jobs", response_model=JobList, summary="Jobs from Slurm's accounting and slurmctld, newest first")
async def list_jobs(
    svc: ServicesDep,
    state: Annotated[str | None, Query(max_length=32, description="Only jobs in this state now, e.g. RUNNING")] = None,
    user: Annotated[str | None, Query(pattern=NAME_PATTERN, description="Only this user's jobs")] = None,
    since: Annotated[int | None, Query(ge=0, le=253_402_300_799, description=(
        "Epoch seconds: only jobs pending or running at or after this time (sacct -S); default: all"))] = None,
    until: Annotated[int | None, Query(ge=1, le=253_402_300_800, description=(
        "Epoch seconds: only jobs eligible (submitted) before this time (sacct -E); default: now"))] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Jobs per page")] = 100,
    cursor: Annotated[int | None, Query(ge=1, le=4_294_967_295, description=(
        "The `next` of the previous page: only jobs with a smaller id"))] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Jobs to skip (after `cursor`)")] = 0,
) -> dict[str, Any]:
    wanted = state.upper() if state else None
    if wanted is not None and wanted not in JOB_STATES:
        raise HTTPException(422, f"query parameter 'state': {state!r} is not a Slurm job state; use one of "
                                 f"{', '.join(sorted(JOB_STATES))}")
    if since is not None and until is not None and until <= since:
        raise HTTPException(422, f"query parameters 'since' ({since}) and 'until' ({until}): 'until' must be "
                                 "later than 'since'")
    jobs = await find_jobs(svc.slurm, JobFilter(wanted, user, since, until), svc.clock)
    total = len(jobs)
    if cursor is not None:
        jobs = [job for job in jobs if job.id < cursor]
    page = jobs[offset:offset + limit]
    more = len(jobs) > offset + limit
    return {"jobs": [asdict(j) for j in page], "total": total, "next": page[-1].id if more and page else None}


@router.get("/spend", response_model=Spend, summary="What the jobs cost, per user and per day (UTC)")
async def spend(
    svc: ServicesDep,
    since: Annotated[int | None, Query(ge=0, le=253_402_300_800, description=(
        "Epoch seconds: jobs pending or running at some time since then; default: 30 days ago"))] = None,
    until: Annotated[int | None, Query(ge=1, le=253_402_300_800, description="Epoch seconds; default: now")] = None,
) -> dict[str, Any]:
    now = int(svc.clock())
    start = since if since is not None else now - 30 * 86_400
    end = until if until is not None else now + 1
    if end <= start:
        raise HTTPException(422, f"query parameters 'since' ({start}) and 'until' ({end}): 'until' must be later "
                                 "than 'since'")
    jobs = await find_jobs(svc.slurm, JobFilter(None, None, start, end), svc.clock)
    by_user: dict[str, float] = defaultdict(float)
    by_day: dict[str, float] = defaultdict(float)
    priced = 0
    for job in jobs:
        if job.cost_usd is None:
            continue
        priced += 1
        by_user[job.user] += job.cost_usd
        day = job.end_time or job.start_time or now
        by_day[datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%d")] += job.cost_usd
    return {"since": start, "until": end, "jobs": len(jobs), "priced_jobs": priced,
            "total_usd": round(sum(by_user.values()), 4),
            "by_user": [{"user": user, "usd": round(usd, 4)} for user, usd in sorted(by_user.items())],
            "by_day": [{"day": day, "usd": round(usd, 4)} for day, usd in sorted(by_day.items())]}


@router.get("/jobs/{job_id}", response_model=Job, summary="One job", responses=NOT_FOUND)
async def get_job(job_id: JobId, svc: ServicesDep) -> dict[str, Any]:
    return asdict(await _job(svc, job_id))


@router.post("/jobs", response_model=JobCreated, status_code=status.HTTP_201_CREATED, summary="Submit a batch job",
             responses={400: {"model": ErrorBody,
                              "description": "More GPUs per node than the pods have, more nodes than are networked, "
                                             "or Slurm refused the job (e.g. no such partition)"}})
async def submit_job(request: JobRequest, svc: ServicesDep) -> dict[str, int]:
    pods = list(svc.fleet.names().values())
    if request.nodes > 1:
        if not pods or not all(pod.global_networking for pod in pods):
            raise HTTPException(400, f"nodes={request.nodes}: this cluster's pods have no network between them, so a "
                                     "job runs on one node. Multi-node jobs need RunPod's global networking: provision "
                                     "the pods with -e provision_global_networking=true (NVIDIA on-demand pods in a "
                                     "data centre that offers it), or ask for 1 node.")
    # gpus_per_node GPUs on each of `nodes` pods: that many pods must have that many GPUs. Without a pods file
    # (nothing deployed yet) Slurm judges alone.
    counts = sorted((pod.gpu_count for pod in pods), reverse=True)
    if counts:
        if request.nodes > len(counts):
            raise HTTPException(400, f"nodes={request.nodes}: this cluster has {len(counts)} pod(s), so a job can run "
                                     f"on 1 to {len(counts)} node(s).")
        most = counts[request.nodes - 1]
        if request.gpus_per_node > most:
            raise HTTPException(400, f"gpus_per_node={request.gpus_per_node} with nodes={request.nodes} is "
                                     f"{request.gpus_per_node} GPU(s) on each of {request.nodes} node(s), "
                                     f"{request.gpus_per_node * request.nodes} in all. This cluster's pods have GPUs: "
                                     f"{', '.join(map(str, counts))}, so a job on {request.nodes} node(s) can have at "
                                     f"most {most} GPU(s) per node: ask for gpus_per_node 0 to {most}.")
    out_dir = svc.settings.job_output_dir
    spec = JobSpec(script=request.script, name=request.name, working_directory=out_dir,
                   standard_output=f"{out_dir}/slurm-%j.out", nodes=request.nodes, gpus_per_node=request.gpus_per_node,
                   time_limit_minutes=request.time_limit_minutes, partition=request.partition)
    try:
        job_id = await svc.slurm.submit(spec)
    except SlurmRefused as err:
        raise HTTPException(400, f"Slurm refused the job: {err}") from None
    return {"id": job_id}


@router.delete("/jobs/{job_id}", response_model=JobCancelled, status_code=status.HTTP_202_ACCEPTED,
               summary="Cancel a job",
               responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The job has already finished"}})
async def cancel_job(job_id: JobId, svc: ServicesDep) -> dict[str, Any]:
    job = await _job(svc, job_id)
    if job.finished:
        raise HTTPException(409, f"job {job_id} has already finished ({job.state}): nothing to cancel")
    if not await svc.slurm.cancel(job_id):
        raise HTTPException(404, f"Slurm does not know job {job_id}")
    return {"id": job_id, "cancelled": True}


@router.get("/jobs/{job_id}/output", response_model=JobOutput, summary="The tail of the job's standard output",
            responses={404: {"model": ErrorBody, "description": "Unknown job, or no output file"},
                       409: {"model": ErrorBody, "description": "The job has not started"}})
async def job_output(job_id: JobId, svc: ServicesDep,
                     lines: Annotated[int, Query(ge=1, le=MAX_OUTPUT_LINES)] = 200) -> dict[str, Any]:
    job = await _job(svc, job_id)
    # A finished job's output, as its node handed it over at the job's end: no pod is asked.
    if svc.outputs is not None:
        kept = svc.outputs.tail(job_id, "stdout", lines, MAX_OUTPUT_BYTES)
        if kept is not None:
            text, count, truncated = kept
            return {"id": job_id, "text": text, "lines": count, "truncated": truncated, "source": "service-plane"}
    if job.batch_host is None and job.finished:
        raise HTTPException(404, f"job {job_id} ended without running on a node ({job.state}, "
                                 f"{job.reason or 'no reason'}): it has no output")
    if job.batch_host is None or job.state == "PENDING":
        raise HTTPException(409, f"job {job_id} has not started ({job.state}): it has no output yet")
    if not job.stdout_path:
        raise HTTPException(404, f"job {job_id} has no standard output file")
    # A running job's output (or a finished one's that its node could not hand over) is read on the pod as the
    # job's own user, never root, and only inside that job's own directory: the API's jobs' (job_output_dir) or
    # one of its own directly under the pods' jobs root (submit_job.yml's). A job that points its output at a
    # key or at another job's file, or replaces its file or a directory on the way with a link, gets nothing.
    directory = output_directory(job.workdir, svc.settings)
    if directory is None:
        api_dir = posixpath.normpath(svc.settings.job_output_dir)
        raise HTTPException(404, f"job {job_id}'s directory {job.workdir or '(none)'} is not a job directory "
                                 f"gpuops reads output in ({api_dir}, or a directory of the job's own directly "
                                 f"under {posixpath.dirname(api_dir)}): gpuops does not read its output file "
                                 f"{job.stdout_path}")
    path = output_file(job.stdout_path, directory)
    if path is None:
        raise HTTPException(404, f"job {job_id}'s output file {job.stdout_path} is not inside the job's directory "
                                 f"{directory}: gpuops does not read it")
    if not job.user or not USER_NAME.match(job.user):
        raise HTTPException(404, f"job {job_id}'s user {job.user or '(none)'} is not a user name gpuops reads "
                                 "output as: gpuops does not read it")
    # The pod and its SSH endpoint are the inventory's (the pods file): the cloud is not asked.
    pod = svc.fleet.by_node(job.batch_host)
    if pod is None:
        raise UpstreamError("inventory", f"job {job_id} ran on {job.batch_host}, which is not a pod of this "
                                         f"deployment (pods file {svc.settings.pods_file}): cannot reach its output")
    if pod.ssh_host is None or pod.ssh_port is None or pod.host_key_alias is None:
        raise UpstreamError("inventory", f"pod {pod.name} ({pod.id}) has no SSH endpoint in the pods file "
                                         f"{svc.settings.pods_file} (no ssh.direct when the inventory was read): "
                                         f"cannot read job {job_id}'s output; run ansible-playbook "
                                         "playbooks/stack.yml once the pod runs")
    # The host key is pinned under the alias of this start of the pod (runpod-<id>-<startedAt epoch>); a pod
    # restarted since the file was rendered has a new alias and new keys, which SSH refuses until a redeploy.
    tail = await svc.ssh.tail(pod.ssh_host, pod.ssh_port, pod.host_key_alias, path, lines, job.user, directory)
    if tail is None:
        raise HTTPException(404, f"job {job_id}'s output file {job.stdout_path} does not exist on {pod.name}, or "
                                 f"is not a regular file that {job.user} can read inside {directory} without "
                                 "following a link")
    return {"id": job_id, "text": tail.text, "lines": tail.lines, "truncated": tail.truncated, "source": "pod"}


@router.get("/jobs/{job_id}/gpus", response_model=History, summary="Metrics of the GPUs the job held")
async def job_gpus(job_id: JobId, svc: ServicesDep, range_: RangeParam = "15m",
                   step: StepParam = None) -> dict[str, Any]:
    return await history(svc, range_, step, job_id)
