"""Request bodies of RunPod's REST v2, parsed after they passed the spec's JSON Schema.

``spec.validate`` is the contract check (422 with every violation); these
models only turn a valid body into typed values with RunPod's defaults
(``cloud`` SECURE, ``globalNetworking`` false, ``gpu.count`` 1, ...). They
forbid unknown names too, as a second line behind the schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

CloudType = Literal["SECURE", "COMMUNITY"]
PodActionName = Literal["start", "stop", "restart", "terminate"]

#: Container disk (GB) of a pod whose create body gives no ``disk``.
DEFAULT_DISK_GB = 50


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, extra="forbid")


class GpuRequest(_Body):
    """``CreateGpuConfig``."""

    id: str
    count: int = 1
    allowed_cuda_versions: list[str] = Field(default_factory=list)
    min_cuda_version: str | None = None


class PersistentMount(_Body):
    """``PersistentMount``: host-local storage kept across restarts."""

    size: int
    path: str


class NetworkMount(_Body):
    """``NetworkMount``: a network volume."""

    volume_id: str
    path: str


class Mounts(_Body):
    """``Mounts``: at most one of persistent or network."""

    persistent: PersistentMount | None = None
    network: list[NetworkMount] | None = None


class CreatePod(_Body):
    """``CreatePodRequest``."""

    name: str
    image: str | None = None
    template_id: str | None = None
    args: str = ""
    disk: int = DEFAULT_DISK_GB
    env: dict[str, str] = Field(default_factory=dict)
    ports: list[str] = Field(default_factory=list)
    registry: str | None = None
    cloud: CloudType = "SECURE"
    gpu: GpuRequest | None = None
    cpu: dict[str, object] | None = None
    data_center_ids: list[str] = Field(default_factory=list)
    global_networking: bool = False
    mounts: Mounts | None = None
    start_jupyter: bool = False
    start_ssh: bool = False


class UpdatePod(_Body):
    """``UpdatePodRequest``: only the fields present change (``model_fields_set``)."""

    name: str | None = None
    image: str | None = None
    args: str | None = None
    disk: int | None = None
    env: dict[str, str] | None = None
    ports: list[str] | None = None
    registry: str | None = None
    mounts: Mounts | None = None
    locked: bool | None = None
    global_networking: bool | None = None
    template_id: str | None = None


class PodActionRequest(_Body):
    """``PodActionRequest``."""

    action: PodActionName


class UpdateSshKeys(_Body):
    """``UpdateSshKeysRequest``: the full set of keys (a replacement)."""

    keys: list[str]
