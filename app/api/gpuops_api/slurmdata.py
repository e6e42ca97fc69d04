"""Slurm's job and node records (slurmrestd's OpenAPI, SLURM_API_VERSIONS) turned into the API's view of them.

Each OpenAPI version slurmrestd serves has a `Dialect` here (`dialect(version)`):
what the API sends it (a job submission) and how it reads its replies (jobs,
nodes, pings, the submitted job's id). Every field read is checked against
recordings of the real slurmrestd (tests/fixtures/api/slurm/):

- v0.0.38 (Slurm 22.05, openapi/v0.0.38): states are strings (a node's flags
  in ``state_flags``), numbers are plain integers with Slurm's NO_VAL
  sentinels, ``exit_code`` is the raw wait(2) status; a submission is
  ``{"script", "job": {..., "environment": {NAME: value}, "gres"}}``.
- v0.0.40, v0.0.41, v0.0.42 (Slurm 23.11+, openapi/slurmctld's data parsers):
  ``job_state`` and a node's ``state`` are lists of flags, numbers (times,
  limits, node counts, array ids) are ``{"set", "infinite", "number"}``,
  ``exit_code`` is ``{"status": [...], "return_code": {...}, "signal": {"id":
  {...}, "name"}}``; a submission is ``{"job": {..., "script", "environment":
  ["NAME=value"], "tres_per_node": "gres/gpu:N", "time_limit": {...}}}``;
  pings say ``pinged`` instead of ``ping``.

Slurm's accounting (slurmdbd, through slurmrestd's openapi/slurmdbd at
``/slurmdb/<version>/``, v0.0.42) keeps every job, also after slurmctld
forgets it (MinJobAge). Its records (tests/fixtures/api/slurmdb/) differ
from slurmctld's: ``state: {"current": [...], "reason"}``, ``user``,
``allocation_nodes``, ``time: {"submission", "start", "end", "limit"}`` (plain
epoch seconds, the limit a number struct), ``tres: {"allocated",
"requested"}`` as ``[{"type", "name", "count"}]``, ``stdout_expanded``
(v0.0.41+), ``working_directory`` (slurmctld's ``current_working_directory``),
and ``steps`` whose ``batch`` step names the batch host.
``AccountingDialect.parse_job`` reads them into the same `Job`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .errors import UpstreamError

#: slurmrestd OpenAPI versions whose records this module reads (Slurm 22.05: v0.0.38; 23.11: v0.0.40;
#: 24.11: v0.0.40, v0.0.41, v0.0.42), oldest first.
SLURM_API_VERSIONS = ("v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42")
#: Job states after which a job no longer runs (it cannot be cancelled).
FINISHED_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
})
#: Every job state the API reports (Slurm's job_state_string(): a base state, or the flag that overrides it).
JOB_STATES = FINISHED_STATES | {
    "COMPLETING", "CONFIGURING", "PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "RUNNING",
    "SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED", "RESV_DEL_HOLD",
}
#: A job's base states (enum job_states); v0.0.40+ list the base state, then its flags.
_JOB_BASE_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT",
                              "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"})
#: The flags that squeue and job_state_string() (src/common/slurm_protocol_defs.c) name instead of the base
#: state, in its order (what v0.0.38 sends as the one string); other flags (LAUNCH_FAILED...) are not shown.
_JOB_STATE_FLAGS = ("COMPLETING", "STAGE_OUT", "CONFIGURING", "RESIZING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                    "SPECIAL_EXIT", "STOPPED", "REVOKED", "RESV_DEL_HOLD", "SIGNALING")
#: A node's base states (node_state_base_string()); everything else in v0.0.40+'s list is a flag.
_NODE_BASE_STATES = frozenset({"UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE"})
#: States always present in the metrics (0 when no job is in them), so that dashboards show a zero.
METRIC_JOB_STATES = ("pending", "running", "completed", "failed", "cancelled", "timeout")
METRIC_NODE_STATES = ("idle", "mixed", "allocated", "down", "drained", "draining")
#: Slurm's "no limit" / "no value" sentinels in v0.0.38's 32-bit fields.
_NO_VALUE = 0xFFFFFFFE
#: The environment a submitted job starts with.
JOB_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


@dataclass(frozen=True)
class JobSpec:
    """A batch job as the API submits it, whatever the OpenAPI version."""

    script: str
    name: str
    working_directory: str
    standard_output: str
    nodes: int = 1
    gpus_per_node: int = 0
    time_limit_minutes: int = 60
    partition: str | None = None
    environment: Mapping[str, str] = field(default_factory=lambda: dict(JOB_ENVIRONMENT))


# A Slurm job, from slurmctld's record or accounting's: the API's one job type (the routes' schema and JSON, the
# metrics, the job history's cache). No docstring: it would become a description in the OpenAPI document.
@pydantic_dataclass(frozen=True)
class Job:
    id: int
    name: str
    user: str
    state: Annotated[str, Field(
        description="Slurm's job state: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT...")]
    reason: str | None
    exit_code: Annotated[int | None, Field(
        description="Once finished: the exit code, or 128 + the signal that ended it")]
    nodes: str
    node_count: int
    gpus: Annotated[int, Field(description="GPUs of the whole job (per node times nodes)")]
    partition: str
    submit_time: int | None
    start_time: int | None
    end_time: int | None
    time_limit_minutes: int | None
    stdout_path: str | None
    batch_host: str | None
    #: The AdminComment gpuops' PrologSlurmctld records, which slurmdbd keeps.
    usd_per_gpu_hour: Annotated[float | None, Field(description=(
        "What one of the job's GPUs cost per hour (USD) when it was allocated, as Slurm's accounting recorded it"
    ))] = None
    cost_usd: Annotated[float | None, Field(description=(
        "The job's GPU-hours times usd_per_gpu_hour (up to now while it runs); null without a recorded price"))] = None
    #: Slurm's ``restart_cnt``.
    requeues: Annotated[int, Field(
        description="Times Slurm requeued the job (after a pod it ran on was lost, or by hand)")] = 0
    #: Slurm's ``failed_node``: None when no node failed under the job (a requeue by hand, or none).
    failed_node: Annotated[str | None, Field(description=(
        "The node that failed under the job (it was then requeued, or ended NODE_FAIL); null when none did"))] = None
    #: The job's working directory (slurmctld's ``current_working_directory``, accounting's ``working_directory``):
    #: where the API accepts its output file. Internal: in neither the API's JSON nor its OpenAPI document.
    workdir: Annotated[str | None, Field(exclude=True)] = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class Node:
    name: str
    state: str
    gpus_total: int
    gpus_allocated: int


@dataclass(frozen=True)
class Ping:
    hostname: str
    mode: str
    up: bool


# -- the numbers of each version ---------------------------------------------------------------


def _sentinel(value: Any) -> Any:
    """v0.0.38: Slurm's NO_VAL / INFINITE sentinels are no value."""
    return None if isinstance(value, int) and value >= _NO_VALUE else value


def _no_val(value: Any) -> Any:
    """v0.0.40+: ``{"set", "infinite", "number"}``; unset or infinite is no value."""
    if not isinstance(value, dict) or not {"set", "infinite", "number"} <= value.keys():
        raise ValueError('a number must be {"set", "infinite", "number"}')
    return value["number"] if value["set"] is True and value["infinite"] is not True else None


Number38 = Annotated[int | None, BeforeValidator(_sentinel)]
Number40 = Annotated[int | None, BeforeValidator(_no_val)]


class _Signal(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Number40 = None
    name: str = ""


class _ExitCode(BaseModel):
    """v0.0.40+'s process_exit_code_verbose."""

    model_config = ConfigDict(extra="ignore")
    status: list[str]
    return_code: Number40 = None
    signal: _Signal = _Signal()

    def shell(self) -> int | None:
        """As a shell reports it: the exit code, or 128 + the signal that ended the process."""
        if {"SIGNALED", "CORE_DUMPED"} & set(self.status) and self.signal.id:
            return 128 + self.signal.id
        if {"PENDING", "INVALID"} & set(self.status):
            return None
        return self.return_code


# -- records -------------------------------------------------------------------------------------


class _Job38(BaseModel):
    """The fields of a v0.0.38 job record that the API reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    job_id: int
    name: str = ""
    user_name: str = ""
    job_state: str = "UNKNOWN"
    state_reason: str = ""
    exit_code: int | None = None
    nodes: str = ""
    node_count: Number38 = 0
    tres_per_node: str = ""
    tres_per_job: str = ""
    tres_alloc_str: str = ""
    gres_detail: list[str] = []
    partition: str = ""
    submit_time: Number38 = 0
    start_time: Number38 = 0
    end_time: Number38 = 0
    time_limit: Number38 = None
    standard_output: str = ""
    current_working_directory: str = ""
    batch_host: str = ""
    admin_comment: str = ""
    restart_cnt: int = 0
    failed_node: str = ""
    array_job_id: Number38 = 0
    array_task_id: Number38 = None

    def state(self) -> str:
        return self.job_state.upper() or "UNKNOWN"

    def shell_exit_code(self) -> int | None:
        return exit_code(self.exit_code)


class _Job40(_Job38):
    """v0.0.40, v0.0.41, v0.0.42: the same fields with flag lists and number structs."""

    job_state: list[str] = []  # type: ignore[assignment]
    exit_code: _ExitCode | None = None  # type: ignore[assignment]
    node_count: Number40 = None
    submit_time: Number40 = None
    start_time: Number40 = None
    end_time: Number40 = None
    time_limit: Number40 = None
    array_job_id: Number40 = None
    array_task_id: Number40 = None

    def state(self) -> str:
        return job_state(self.job_state)

    def shell_exit_code(self) -> int | None:
        return self.exit_code.shell() if self.exit_code is not None else None


def job_state(flags: list[str]) -> str:
    """The state the API reports for v0.0.40+'s list of a job's state flags (a base state and its flags), as
    job_state_string() names it: the overriding flag, else the base state."""
    states = [s.upper() for s in flags]
    flag = next((f for f in _JOB_STATE_FLAGS if f in states), None)
    base = next((s for s in states if s in _JOB_BASE_STATES), None)
    return flag or base or "UNKNOWN"


_LISTED_JOB_ID = re.compile(r"(\d+)(?:[_+].*)?")


def listed_job(raw: Any) -> tuple[int, str] | None:
    """(job id, state) of an entry of v0.0.42's ``GET /jobs/state``; None for an entry the API cannot read.

    Its ``job_id`` is a string: ``"<id>"``, or ``"<id>_<array task id>"`` for an array's task (a task that still
    waits in the array's own record lists under that record's id; several entries can then share one id).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("job_id"), str) or not isinstance(raw.get("state"), list):
        return None
    match = _LISTED_JOB_ID.fullmatch(raw["job_id"])
    return (int(match.group(1)), job_state([s for s in raw["state"] if isinstance(s, str)])) if match else None


class _Node38(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    state: str = "unknown"
    state_flags: list[str] = []
    gres: str = ""
    gres_used: str = ""

    def base_and_flags(self) -> tuple[str, set[str]]:
        return self.state.lower() or "unknown", {flag.upper() for flag in self.state_flags}


class _Node40(_Node38):
    state: list[str] = []  # type: ignore[assignment]

    def base_and_flags(self) -> tuple[str, set[str]]:
        states = [s.upper() for s in self.state]
        base = next((s for s in states if s in _NODE_BASE_STATES), "UNKNOWN")
        return base.lower(), set(states) - {base}


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


def expand_output_path(pattern: str, job: _Job38) -> str:
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


def _time(value: int | None) -> int | None:
    return value if value is not None and 0 < value < _NO_VALUE else None


def _read(model: type[BaseModel], raw: Any, what: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UpstreamError("slurmrestd", f"slurmrestd sent a {what} record the API cannot read "
                                          f"({where}: {first['msg']})") from None


# -- the dialects ----------------------------------------------------------------------------------


_PRICE = re.compile(r"(?:^|[\s,;])gpuops_usd_per_gpu_hour=([0-9]+(?:\.[0-9]+)?)(?:$|[\s,;])")


def recorded_price(admin_comment: str | None) -> float | None:
    """The price per GPU-hour that gpuops' PrologSlurmctld recorded in a job's AdminComment, or None."""
    match = _PRICE.search(admin_comment or "")
    return float(match.group(1)) if match else None


def job_cost(price: float | None, gpus: int, start: int | None, end: int | None,
             now: float | None = None) -> float | None:
    """GPU-hours times the price (USD, 4 decimals); up to now while the job runs; None without price or start."""
    if price is None or start is None:
        return None
    stop = end if end is not None else (time.time() if now is None else now)
    return round(price * gpus * max(0.0, stop - start) / 3600, 4)


class Dialect:
    """slurmrestd's v0.0.38 (openapi/v0.0.38): what the API sends and how it reads the replies."""

    version = "v0.0.38"
    _job_model: type[_Job38] = _Job38
    _node_model: type[_Node38] = _Node38

    def submit_body(self, spec: JobSpec) -> dict[str, Any]:
        job: dict[str, Any] = {
            "name": spec.name,
            "nodes": str(spec.nodes),
            "time_limit": spec.time_limit_minutes,
            "current_working_directory": spec.working_directory,
            "standard_output": spec.standard_output,
            "environment": dict(spec.environment),
        }
        if spec.gpus_per_node:
            job["gres"] = f"gpu:{spec.gpus_per_node}"
        if spec.partition:
            job["partition"] = spec.partition
        return {"script": spec.script, "job": job}

    def parse_job(self, raw: Any) -> Job:
        job = _read(self._job_model, raw, f"{self.version} job")
        state = job.state()
        finished = state in FINISHED_STATES
        node_count = job.node_count or 0
        started = state not in ("PENDING", "UNKNOWN") and bool(_time(job.start_time))
        per_node = gpu_count(job.tres_per_node)
        gpus = (gpu_count(job.tres_alloc_str) or gpu_count(job.tres_per_job)
                or (per_node * max(node_count, 1) if per_node else None)
                or sum(gpu_count(detail) or 0 for detail in job.gres_detail))
        limit = job.time_limit if job.time_limit is not None and job.time_limit > 0 else None
        return Job(
            id=job.job_id,
            name=job.name,
            user=job.user_name,
            state=state,
            reason=None if job.state_reason in ("", "None") else job.state_reason,
            exit_code=job.shell_exit_code() if finished else None,
            nodes=job.nodes,
            node_count=node_count,
            gpus=gpus,
            partition=job.partition,
            submit_time=_time(job.submit_time),
            start_time=_time(job.start_time) if started else None,
            end_time=_time(job.end_time) if finished else None,
            time_limit_minutes=limit,
            stdout_path=expand_output_path(job.standard_output, job) if job.standard_output else None,
            batch_host=job.batch_host or None,
            requeues=job.restart_cnt,
            workdir=job.current_working_directory or None,
            failed_node=job.failed_node or None,
            **_priced(recorded_price(job.admin_comment), gpus, _time(job.start_time) if started else None,
                      _time(job.end_time) if finished else None),
        )

    def parse_node(self, raw: Any) -> Node:
        node = _read(self._node_model, raw, f"{self.version} node")
        base, flags = node.base_and_flags()
        if "DRAIN" in flags and base != "down":
            busy = base in ("allocated", "mixed", "completing") or "COMPLETING" in flags
            state = "draining" if busy else "drained"
        else:
            state = base
        return Node(node.name, state, gpu_count(node.gres) or 0, gpu_count(node.gres_used) or 0)

    def pings(self, body: Mapping[str, Any]) -> list[Ping]:
        pings = [p for p in body.get("pings") or [] if isinstance(p, dict)]
        return [Ping(str(p.get("hostname")), str(p.get("mode")), self._pinged(p)) for p in pings]

    @staticmethod
    def _pinged(ping: Mapping[str, Any]) -> bool:
        return ping.get("ping") == "UP"

    @staticmethod
    def submitted_id(body: Mapping[str, Any]) -> int | None:
        """The id of the job a submission created (0 or absent when none was)."""
        job_id = body.get("job_id")
        return job_id if isinstance(job_id, int) and not isinstance(job_id, bool) and job_id > 0 else None


class Dialect40(Dialect):
    """v0.0.40, v0.0.41 and v0.0.42 (openapi/slurmctld's data parsers, Slurm 23.11 and 24.11)."""

    version = "v0.0.40"
    _job_model = _Job40
    _node_model = _Node40

    def __init__(self, version: str = "v0.0.40") -> None:
        self.version = version

    def submit_body(self, spec: JobSpec) -> dict[str, Any]:
        job: dict[str, Any] = {
            "script": spec.script,
            "name": spec.name,
            "nodes": str(spec.nodes),
            "time_limit": {"set": True, "infinite": False, "number": spec.time_limit_minutes},
            "current_working_directory": spec.working_directory,
            "standard_output": spec.standard_output,
            "environment": [f"{name}={value}" for name, value in spec.environment.items()],
        }
        if spec.gpus_per_node:
            job["tres_per_node"] = f"gres/gpu:{spec.gpus_per_node}"
        if spec.partition:
            job["partition"] = spec.partition
        return {"job": job}

    @staticmethod
    def _pinged(ping: Mapping[str, Any]) -> bool:
        return ping.get("pinged") == "UP" and ping.get("responding", True) is True


#: Job states slurmdbd stores as a job's state (what its ``state`` filter selects on); the other states the API
#: reports (COMPLETING, CONFIGURING...) are flags only slurmctld's live view has.
ACCOUNTED_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT",
                              "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REQUEUED",
                              "RESIZING", "REVOKED"})


class _DbState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    current: list[str] = []
    reason: str = ""


class _DbTime(BaseModel):
    model_config = ConfigDict(extra="ignore")
    eligible: int | None = None
    submission: int | None = None
    start: int | None = None
    end: int | None = None
    limit: Number40 = None


class _Tres(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = ""
    name: str = ""
    count: int = 0


class _DbTresLists(BaseModel):
    model_config = ConfigDict(extra="ignore")
    allocated: list[_Tres] = []
    requested: list[_Tres] = []


class _DbStepNodes(BaseModel):
    model_config = ConfigDict(extra="ignore")
    names: list[str] = Field([], alias="list")


class _DbStepId(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = ""


class _DbStep(BaseModel):
    model_config = ConfigDict(extra="ignore")
    step: _DbStepId = _DbStepId()
    nodes: _DbStepNodes = _DbStepNodes()


class _DbComment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    administrator: str = ""


class _DbJob(BaseModel):
    """The fields of a slurmdbd job record (v0.0.42; v0.0.40's read alike) that the API reads."""

    model_config = ConfigDict(extra="ignore")

    job_id: int
    name: str = ""
    user: str = ""
    state: _DbState = _DbState()
    exit_code: _ExitCode | None = None
    nodes: str = ""
    allocation_nodes: int = 0
    partition: str = ""
    time: _DbTime = _DbTime()
    tres: _DbTresLists = _DbTresLists()
    stdout_expanded: str = ""
    working_directory: str = ""
    comment: _DbComment = _DbComment()
    steps: list[_DbStep] = []
    restart_cnt: int = 0
    failed_node: str = ""

    def job_state(self) -> str:
        return job_state(self.state.current)


def tres_gpus(tres: list[_Tres]) -> int:
    """GPUs in a TRES list: the untyped ``gres/gpu`` count (typed ``gpu:<type>`` entries repeat it)."""
    plain = sum(t.count for t in tres if t.type == "gres" and t.name == "gpu")
    return plain or sum(t.count for t in tres if t.type == "gres" and t.name.startswith("gpu:"))


def _priced(price: float | None, gpus: int, start: int | None, end: int | None) -> dict[str, float | None]:
    return {"usd_per_gpu_hour": price, "cost_usd": job_cost(price, gpus, start, end)}


def first_host(hostlist: str) -> str | None:
    """The first host of a Slurm hostlist ("n[3-5,7],m1" -> "n3"); None for none ("None assigned")."""
    first = re.match(r"([^,\[]*)(?:\[(\d+)[^\]]*\])?", hostlist.strip())
    if not hostlist.strip() or hostlist.strip() == "None assigned" or first is None or not first.group(1):
        return None
    return first.group(1) + (first.group(2) or "")


class AccountingDialect:
    """slurmdbd's job records through slurmrestd's openapi/slurmdbd (v0.0.42)."""

    def __init__(self, version: str) -> None:
        self.version = version

    def parse_job(self, raw: Any) -> Job:
        return self.parse_record(raw)[0]

    def parse_record(self, raw: Any) -> tuple[Job, int]:
        """The job, and when it became eligible (epoch seconds, 0 for never: what slurmdbd's time window reads)."""
        job = _read(_DbJob, raw, f"{self.version} accounting job")
        return self._job(job), _time(job.time.eligible) or 0

    def _job(self, job: _DbJob) -> Job:
        state = job.job_state()
        finished = state in FINISHED_STATES
        started = state not in ("PENDING", "UNKNOWN") and bool(_time(job.time.start))
        gpus = tres_gpus(job.tres.allocated) if job.tres.allocated else tres_gpus(job.tres.requested)
        batch = next((s.nodes.names[0] for s in job.steps if s.step.name == "batch" and s.nodes.names), None)
        nodes = "" if job.nodes == "None assigned" else job.nodes
        limit = job.time.limit if job.time.limit is not None and job.time.limit > 0 else None
        return Job(
            id=job.job_id,
            name=job.name,
            user=job.user,
            state=state,
            reason=None if job.state.reason in ("", "None") else job.state.reason,
            exit_code=job.exit_code.shell() if finished and job.exit_code is not None else None,
            nodes=nodes,
            node_count=job.allocation_nodes if started or finished else 0,
            gpus=gpus,
            partition=job.partition,
            submit_time=_time(job.time.submission),
            start_time=_time(job.time.start) if started else None,
            end_time=_time(job.time.end) if finished else None,
            time_limit_minutes=limit,
            stdout_path=job.stdout_expanded or None,
            batch_host=(batch or first_host(nodes)) if started else None,
            requeues=job.restart_cnt,
            workdir=job.working_directory or None,
            failed_node=job.failed_node or None,
            **_priced(recorded_price(job.comment.administrator), gpus, _time(job.time.start) if started else None,
                      _time(job.time.end) if finished else None),
        )


#: v0.0.42 only: Slurm 24.11's v0.0.40 and v0.0.41 refuse a number as a query's timestamp (HTTP 422, "Parsing of
#: <n> for timestamp failed"; tests/fixtures/api/slurmdb/v0.0.4[01]/jobs_busy.json), and 24.11 offers v0.0.42,
#: which the API then uses.
_ACCOUNTING = {"v0.0.42": AccountingDialect("v0.0.42")}


def accounting_dialect(version: str) -> AccountingDialect | None:
    """How to read slurmdbd's records in one of SLURM_API_VERSIONS; None where the API does not read them (v0.0.38,
    v0.0.40, v0.0.41): the job list and detail then come from slurmctld alone (finished jobs vanish after MinJobAge)."""
    return _ACCOUNTING.get(version)


_DIALECTS: dict[str, Dialect] = {"v0.0.38": Dialect(), **{v: Dialect40(v) for v in ("v0.0.40", "v0.0.41", "v0.0.42")}}
assert tuple(_DIALECTS) == SLURM_API_VERSIONS


def dialect(version: str) -> Dialect:
    """The dialect of one of SLURM_API_VERSIONS (ValueError for any other)."""
    try:
        return _DIALECTS[version]
    except KeyError:
        raise ValueError(f"slurmrestd OpenAPI {version!r}: the API reads {', '.join(SLURM_API_VERSIONS)}") from None


def parse_job(raw: Any, version: str = "v0.0.38") -> Job:
    return dialect(version).parse_job(raw)


def parse_node(raw: Any, version: str = "v0.0.38") -> Node:
    return dialect(version).parse_node(raw)
