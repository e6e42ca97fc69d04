"""Pydantic models of RunPod's REST API v1, with RunPod's camelCase names.

Input models validate request bodies as RunPod's server would: strict JSON
types, field names by alias only (a snake_case key is an unknown field), and
unknown fields ignored. Output models serialise by alias, with nulls kept,
because clients test ``publicIp``/``portMappings`` for null.

Shapes follow ``PodCreateInput``, ``PodUpdateInput`` and ``Pod`` in RunPod's
OpenAPI description (``localcloud/reference/runpod-rest-v1-openapi.json``
in the gpuops workspace).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

DesiredStatus = Literal["RUNNING", "EXITED", "TERMINATED"]
CloudTypeInput = Literal["SECURE", "COMMUNITY", "ALL"]
ComputeType = Literal["GPU", "CPU"]

DEFAULT_PORTS = ["8888/http", "22/tcp"]
_PORT_RE = re.compile(r"^(\d{1,5})/(tcp|http)$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_ports(items: list[str]) -> list[str]:
    """Check and normalise RunPod port entries (blank entries are dropped).

    Each entry must be ``PORT/tcp`` or ``PORT/http`` with PORT in 1..65535,
    and no port may appear twice. Raises ValueError with a message naming the
    offending entry.
    """
    ports: list[str] = []
    seen: set[int] = set()
    for raw in items:
        entry = raw.strip()
        if not entry:
            continue
        match = _PORT_RE.match(entry)
        if not match:
            raise ValueError(f"invalid port {raw!r}: expected PORT/tcp or PORT/http, e.g. '22/tcp'")
        number = int(match.group(1))
        if not 1 <= number <= 65535:
            raise ValueError(f"invalid port {raw!r}: port number must be between 1 and 65535")
        if number in seen:
            raise ValueError(f"port {number} is listed more than once")
        seen.add(number)
        ports.append(entry)
    return ports


def _split_port_string(value: object) -> object:
    """Accept RunPod's comma-separated form ("8888/http,22/tcp") as well as a list."""
    return value.split(",") if isinstance(value, str) else value


#: RunPod's ``ports``: a list of "PORT/proto", or the same as one comma-separated string.
PortList = Annotated[list[str], BeforeValidator(_split_port_string)]


def check_env(env: dict[str, str]) -> dict[str, str]:
    """Check that every env variable name is a valid shell identifier."""
    for name in env:
        if not _ENV_NAME_RE.match(name):
            raise ValueError(f"invalid variable name {name!r}: use letters, digits and '_', not starting with a digit")
    return env


def check_mount_path(path: str) -> str:
    """Check that a volume mount path is absolute."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r} is not an absolute path")
    return path


class _InputModel(BaseModel):
    """Request body: strict JSON types, camelCase names only, extra keys kept aside."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        strict=True,
        extra="allow",
    )

    def ignored_fields(self) -> list[str]:
        """Return the body's keys that this model does not know (they are ignored)."""
        return sorted(self.model_extra or {})


class PodCreateInput(_InputModel):
    """Body of ``POST /v1/pods`` (RunPod's ``PodCreateInput``)."""

    name: str = Field("my pod", max_length=191)
    image_name: str | None = None
    template_id: str | None = None
    compute_type: ComputeType = "GPU"
    gpu_type_ids: list[str] | None = None
    gpu_count: int = Field(1, ge=1)
    cloud_type: CloudTypeInput = "SECURE"
    interruptible: bool = False
    support_public_ip: bool | None = None
    ports: PortList = Field(default_factory=lambda: list(DEFAULT_PORTS))
    env: dict[str, str] = Field(default_factory=dict)
    container_disk_in_gb: int | None = Field(50, ge=1)
    volume_in_gb: int | None = Field(20, ge=0)
    volume_mount_path: str = "/workspace"
    docker_entrypoint: list[str] = Field(default_factory=list)
    docker_start_cmd: list[str] = Field(default_factory=list)
    locked: bool = False
    global_networking: bool = False
    data_center_ids: list[str] | None = None
    network_volume_id: str | None = None

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[str]) -> list[str]:
        return parse_ports(value)

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return check_env(value)

    @field_validator("volume_mount_path")
    @classmethod
    def _mount(cls, value: str) -> str:
        return check_mount_path(value)


class PodUpdateInput(_InputModel):
    """Body of ``PATCH /v1/pods/{podId}`` (RunPod's ``PodUpdateInput``); every field optional."""

    name: str | None = Field(None, max_length=191)
    image_name: str | None = Field(None, min_length=1)
    ports: PortList | None = None
    env: dict[str, str] | None = None
    container_disk_in_gb: int | None = Field(None, ge=1)
    volume_in_gb: int | None = Field(None, ge=0)
    volume_mount_path: str | None = None
    docker_entrypoint: list[str] | None = None
    docker_start_cmd: list[str] | None = None
    locked: bool | None = None
    global_networking: bool | None = None
    container_registry_auth_id: str | None = None

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else parse_ports(value)

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_env(value)

    @field_validator("volume_mount_path")
    @classmethod
    def _mount(cls, value: str | None) -> str | None:
        return None if value is None else check_mount_path(value)


class _OutputModel(BaseModel):
    """Response body: built by Python name, serialised by RunPod's camelCase name."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)


class GpuInfo(_OutputModel):
    """``Pod.gpu`` and ``Pod.machine.gpuType``: the GPU model and its prices."""

    id: str
    count: int | None = None
    display_name: str
    memory_in_gb: int
    secure_price: float
    community_price: float
    secure_spot_price: float
    community_spot_price: float
    one_week_price: float
    one_month_price: float
    three_month_price: float
    six_month_price: float


class MachineInfo(_OutputModel):
    """``Pod.machine``: the (simulated) host the pod runs on."""

    gpu_type_id: str
    gpu_type: GpuInfo
    gpu_display_name: str
    min_pod_gpu_count: int = 1
    gpu_available: int
    cpu_count: int
    cpu_type_id: str = "localcloud-vcpu"
    data_center_id: str
    location: str = "localhost"
    secure_cloud: bool
    support_public_ip: bool
    cost_per_hr: float
    current_price_per_gpu: float
    disk_throughput_m_bps: int = 2000
    max_download_speed_mbps: int = 10000
    max_upload_speed_mbps: int = 10000
    maintenance_start: str | None = None
    maintenance_end: str | None = None
    maintenance_note: str | None = None
    note: str | None = None


class Pod(_OutputModel):
    """A pod as RunPod's ``GET /v1/pods/{podId}`` answers it."""

    id: str
    name: str
    desired_status: DesiredStatus
    public_ip: str | None
    port_mappings: dict[str, int] | None
    cost_per_hr: float
    adjusted_cost_per_hr: float
    gpu: GpuInfo
    gpu_count: int
    machine: MachineInfo
    machine_id: str
    image: str
    image_name: str
    env: dict[str, str]
    interruptible: bool
    locked: bool
    ports: list[str]
    container_disk_in_gb: int
    volume_in_gb: int
    volume_mount_path: str
    memory_in_gb: int
    vcpu_count: int
    docker_entrypoint: list[str]
    docker_start_cmd: list[str]
    created_at: str
    last_started_at: str | None
    last_status_change: str
    consumer_user_id: str = "user_localcloud"
    template_id: str | None = None
    network_volume: dict[str, Any] | None = None
    savings_plans: list[dict[str, Any]] = Field(default_factory=list)
    endpoint_id: str | None = None
    ai_api_id: str | None = None
    sls_version: int = 0
    volume_encrypted: bool = False
    container_registry_auth_id: str | None = None
    cpu_flavor_id: str | None = None


class ErrorBody(BaseModel):
    """Every error answer.

    ``error`` and ``status`` as RunPod's REST server sends them, ``message``
    as the OpenAPI's ``UnauthorizedError`` schema names it.
    """

    error: str
    message: str
    status: int
