"""Slurm's job and node records (slurmrestd's OpenAPI, SLURM_API_VERSIONS) turned into the API's view of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UpstreamError

#: slurmrestd OpenAPI versions whose job and node records this module reads (tested on Slurm 22.05's recordings).
SLURM_API_VERSIONS = ("v0.0.38",)
#: Job states after which a job no longer runs (it cannot be cancelled).
FINISHED_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
})
#: Every base job state Slurm 22.05 reports.
JOB_STATES = FINISHED_STATES | {
    "COMPLETING", "CONFIGURING", "PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "RUNNING",
    "SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED",
}
#: States always present in the metrics (0 when no job is in them), so that dashboards show a zero.
METRIC_JOB_STATES = ("pending", "running", "completed", "failed", "cancelled", "timeout")
METRIC_NODE_STATES = ("idle", "mixed", "allocated", "down", "drained", "draining")
#: Slurm's "no limit" / "no value" sentinels in 32-bit fields.
_NO_VALUE = 0xFFFFFFFE


class _SlurmJob(BaseModel):
    """The fields of v0.0.38's job record that the API reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    job_id: int
    name: str = ""
    user_name: str = ""
    job_state: str = "UNKNOWN"
    state_reason: str = ""
    exit_code: int | None = None
    nodes: str = ""
    node_count: int = 0
    tres_per_node: str = ""
    tres_per_job: str = ""
    tres_alloc_str: str = ""
    gres_detail: list[str] = []
    partition: str = ""
    submit_time: int = 0
    start_time: int = 0
    end_time: int = 0
    time_limit: int | None = None
    standard_output: str = ""
    batch_host: str = ""
    array_job_id: int = 0
    array_task_id: int | None = None


class _SlurmNode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    state: str = "unknown"
    state_flags: list[str] = []
    gres: str = ""
    gres_used: str = ""


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    user: str
    state: str
    reason: str | None
    exit_code: int | None
    nodes: str
    node_count: int
    gpus: int
    partition: str
    submit_time: int | None
    start_time: int | None
    end_time: int | None
    time_limit_minutes: int | None
    stdout_path: str | None
    batch_host: str | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class Node:
    name: str
    state: str
    gpus_total: int
    gpus_allocated: int


def gpu_count(spec: str) -> int | None:
    """GPUs named in a TRES/GRES list ("gres:gpu:2", "gres/gpu=2", "gpu:a100:1(IDX:0)"); None if none."""
    total = None
    for item in re.split(r"[,;]", re.sub(r"\([^)]*\)", "", spec or "")):
        item = item.strip()
        match = re.fullmatch(r"(?:gres[:/])?gpu(?::[^:=]+)?[:=](\d+)", item) or re.fullmatch(r"(?:gres[:/])?gpu", item)
        if match:
            total = (total or 0) + (int(match.group(1)) if match.groups() else 1)
    return total


def exit_code(status: int | None) -> int | None:
    """A wait(2) status as a shell reports it: the exit code, or 128 + the signal that ended the job."""
    if status is None or status < 0:
        return None
    signal = status & 0x7F
    return 128 + signal if signal else (status >> 8) & 0xFF


def expand_output_path(pattern: str, job: _SlurmJob) -> str:
    """Slurm's filename pattern (%j, %x, %u, %N, ...) for one job, as sbatch expands it."""
    values = {
        "j": str(job.job_id), "J": str(job.job_id), "x": job.name, "u": job.user_name, "N": job.batch_host,
        "A": str(job.array_job_id or job.job_id), "a": str(job.array_task_id or 0), "n": "0", "t": "0", "%": "%",
    }

    def replace(match: re.Match[str]) -> str:
        width, key = match.group(1), match.group(2)
        value = values.get(key)
        if value is None:
            return match.group(0)
        return value.zfill(int(width)) if width and value.isdigit() else value

    return re.sub(r"%(\d*)([A-Za-z%])", replace, pattern)


def _time(value: int) -> int | None:
    return value if 0 < value < _NO_VALUE else None


def parse_job(raw: dict[str, Any]) -> Job:
    try:
        job = _SlurmJob.model_validate(raw)
    except ValidationError as err:
        raise UpstreamError("slurmrestd",
                            f"slurmrestd sent a job record the API cannot read: {err.errors()[0]['msg']}") from None
    state = job.job_state.upper() or "UNKNOWN"
    finished = state in FINISHED_STATES
    started = state not in ("PENDING", "UNKNOWN") and job.start_time > 0
    per_node = gpu_count(job.tres_per_node)
    gpus = (gpu_count(job.tres_alloc_str) or gpu_count(job.tres_per_job)
            or (per_node * max(job.node_count, 1) if per_node else None)
            or sum(gpu_count(detail) or 0 for detail in job.gres_detail))
    limit = job.time_limit if job.time_limit is not None and 0 < job.time_limit < _NO_VALUE else None
    return Job(
        id=job.job_id,
        name=job.name,
        user=job.user_name,
        state=state,
        reason=None if job.state_reason in ("", "None") else job.state_reason,
        exit_code=exit_code(job.exit_code) if finished else None,
        nodes=job.nodes,
        node_count=job.node_count,
        gpus=gpus,
        partition=job.partition,
        submit_time=_time(job.submit_time),
        start_time=_time(job.start_time) if started else None,
        end_time=_time(job.end_time) if finished else None,
        time_limit_minutes=limit,
        stdout_path=expand_output_path(job.standard_output, job) if job.standard_output else None,
        batch_host=job.batch_host or None,
    )


def parse_node(raw: dict[str, Any]) -> Node:
    try:
        node = _SlurmNode.model_validate(raw)
    except ValidationError as err:
        raise UpstreamError("slurmrestd",
                            f"slurmrestd sent a node record the API cannot read: {err.errors()[0]['msg']}") from None
    base = node.state.lower() or "unknown"
    flags = {flag.upper() for flag in node.state_flags}
    if "DRAIN" in flags and base != "down":
        state = "draining" if base in ("allocated", "mixed", "completing") else "drained"
    else:
        state = base
    return Node(node.name, state, gpu_count(node.gres) or 0, gpu_count(node.gres_used) or 0)
