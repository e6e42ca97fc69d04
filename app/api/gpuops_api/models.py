"""Request and response bodies of the API (what /openapi.json publishes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .slurmdata import Job  # the API's one job type: the routes' schema is the record slurmdata reads

NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_SCRIPT_BYTES = 1024 * 1024
#: Fields of a job request that are refused by name, with what to send instead.
RENAMED_JOB_FIELDS = {
    "gpus": ("gpus is not a field of a job request: it was read as GPUs for the whole job in some places and as GPUs "
             "per node in others. Send gpus_per_node: the GPUs on each of the job's nodes (nodes x gpus_per_node in "
             "all)"),
}


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, and what to do about it")
    upstream: Literal["prometheus", "slurmrestd", "cloud", "ssh", "alertmanager", "inventory"] | None = Field(
        None, description="The upstream that is down or misbehaving (503 only)")


class Health(BaseModel):
    status: Literal["ok"]


class UpstreamStatus(BaseModel):
    ok: bool
    detail: str | None = Field(None, description="What the upstream answered or why it failed; only with the API "
                                                 "token (anonymous callers get 'ok' alone)")


class Readiness(BaseModel):
    ready: bool
    upstreams: dict[str, UpstreamStatus]


class Info(BaseModel):
    version: str
    cloud: str
    grafana_url: str | None
    dashboards: dict[str, str] = Field(description="fleet, jobs and slurm dashboard URLs; empty without Grafana")


class Pod(BaseModel):
    name: str
    id: str
    status: Literal["PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED", "UNKNOWN"]
    role: str
    gpu_type: str
    gpu_count: int
    cost_per_hr: float
    uptime_seconds: int | None
    cost_so_far: float | None = Field(description="cost_per_hr times the uptime of the current run, in hours")
    public_ip: str | None = Field(description="Host of the pod's ssh.direct (its sshd on the published 22/tcp port)")
    ssh_port: int | None = Field(description="Port of the pod's ssh.direct")


class PodList(BaseModel):
    pods: list[Pod]
    cost_per_hr_total: float = Field(description="What the running pods cost per hour together")


class Gpu(BaseModel):
    pod: str
    gpu: str = Field(description="The GPU's index on its pod")
    uuid: str | None
    model: str | None
    util_percent: float | None
    mem_used_mib: float | None
    mem_total_mib: float | None
    temp_c: float | None
    power_w: float | None
    hpc_job: str | None = Field(description="The Slurm job holding the GPU, if any")


class GpuList(BaseModel):
    gpus: list[Gpu]


class Series(BaseModel):
    pod: str
    gpu: str
    metric: Literal["util_percent", "mem_used_mib", "temp_c", "power_w"]
    points: list[tuple[float, float]] = Field(description="[unix time, value] pairs, oldest first")


class History(BaseModel):
    start: int
    end: int
    step: int
    series: list[Series]


class UserSpend(BaseModel):
    user: str
    usd: float


class DaySpend(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC) of the job's end, or of its start while it runs")
    usd: float


class Spend(BaseModel):
    since: int
    until: int
    jobs: int = Field(description="Jobs pending or running at some time in [since, until)")
    priced_jobs: int = Field(description="Those with a recorded price (the others count for nothing)")
    total_usd: float
    by_user: list[UserSpend]
    by_day: list[DaySpend]


class JobList(BaseModel):
    jobs: list[Job]
    total: int = Field(description="Jobs matching the filters (state, user, since, until), before cursor/offset/limit")
    next: int | None = Field(None, description="The `cursor` of the next page (its jobs have smaller ids); null on "
                                               "the last page")


class JobRequest(BaseModel):
    # A field the API does not know (a "user", an "account", an "environment") is refused by name, never ignored.
    model_config = ConfigDict(extra="forbid")

    script: str = Field(min_length=2, max_length=MAX_SCRIPT_BYTES,
                        description='The batch script; its first line must be an interpreter line ("#!/bin/bash")')
    name: str = Field(pattern=NAME_PATTERN, description="1-64 letters, digits, '.', '_' or '-'")
    nodes: int = Field(1, ge=1, le=64)
    gpus_per_node: int = Field(0, ge=0, le=64, description=(
        "GPUs on each of the job's nodes (Slurm's --gpus-per-node); the job gets nodes x gpus_per_node. At most the "
        "GPUs of the job's nodes (a pod's GPU count)"))
    time_limit_minutes: int = Field(60, ge=1, le=10080)
    partition: str | None = Field(None, pattern=NAME_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict):
            for name, instead in RENAMED_JOB_FIELDS.items():
                if name in data:
                    raise PydanticCustomError("renamed_field", instead)
        return data

    @field_validator("script")
    @classmethod
    def _script(cls, value: str) -> str:
        if not value.startswith("#!"):
            raise ValueError('the script must start with an interpreter line such as "#!/bin/bash"')
        if "\x00" in value:
            raise ValueError("the script must not contain NUL characters")
        if len(value.encode("utf-8")) > MAX_SCRIPT_BYTES:  # a lone surrogate fails here too (a ValueError)
            raise ValueError(f"the script must be at most {MAX_SCRIPT_BYTES} bytes")
        return value


class JobCreated(BaseModel):
    id: int


class JobCancelled(BaseModel):
    id: int
    cancelled: Literal[True]


class JobOutput(BaseModel):
    id: int
    text: str
    lines: int
    truncated: bool = Field(description="True when the file has more lines than returned")
    source: Literal["service-plane", "pod"] = Field(
        "pod", description="Where it was read: the service plane's copy (a finished job's, handed over by its node "
                           "at the job's end) or the pod that runs the job (as the job's user)")


class Alert(BaseModel):
    name: str = Field(description="The alert rule's name (label alertname)")
    severity: str = Field(description="critical, warning or info (label severity); empty when the rule sets none")
    summary: str
    description: str
    labels: dict[str, str]
    starts_at: str = Field(description="When it started firing (RFC 3339)")
    fingerprint: str = Field(description="Alertmanager's identifier of this alert")
    receivers: list[str] = Field(description="Alertmanager receivers it is routed to")


class AlertList(BaseModel):
    configured: bool = Field(description="false when the API has no Alertmanager (alertmanager_url unset)")
    alerts: list[Alert] = Field(description="Most severe first, then oldest first")
