"""The local cloud's own record of a pod: what it persists and recovers.

Records use Python names; the API's camelCase view is built from them in
``service.py``. A record holds both what the client asked for and what the
backend made of it (published host ports, private IP, the image really run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DesiredStatus = Literal["RUNNING", "EXITED", "TERMINATED"]
CloudType = Literal["SECURE", "COMMUNITY"]


class PodRecord(BaseModel):
    """Everything the local cloud knows about one pod."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    image_name: str
    runtime_image: str
    gpu_type_id: str
    gpu_count: int
    cloud_type: CloudType
    interruptible: bool
    support_public_ip: bool
    ports: list[str]
    env: dict[str, str]
    container_disk_in_gb: int
    volume_in_gb: int
    volume_mount_path: str
    docker_entrypoint: list[str] = Field(default_factory=list)
    docker_start_cmd: list[str] = Field(default_factory=list)
    locked: bool = False
    global_networking: bool = False
    desired_status: DesiredStatus
    created_at: datetime
    last_started_at: datetime | None = None
    last_status_change: str = ""
    machine_id: str
    data_center_id: str
    vcpu_count: int
    memory_in_gb: int
    cost_per_hr: float
    #: Published host port per pod port, e.g. {"22": 20517}; only tcp ports.
    host_ports: dict[str, int] = Field(default_factory=dict)
    #: The pod's address on the cloud's private network.
    private_ip: str | None = None
    #: True while a network cut (fault injection) is in force.
    network_cut: bool = False

    def tcp_ports(self) -> list[int]:
        """Return the pod's ports exposed as tcp (the ones published on the host)."""
        return [int(p.split("/")[0]) for p in self.ports if p.endswith("/tcp")]


class StateFile(BaseModel):
    """The layout of ``<state-dir>/state.json``."""

    version: Literal[1] = 1
    backend: str
    pods: dict[str, PodRecord] = Field(default_factory=dict)
