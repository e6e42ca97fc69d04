"""The local cloud's own record of a pod: what it persists and recovers.

Records use Python names; the API's view (RunPod v2 ``Pod``) is built from
them in ``views.py``. A record holds both what the client asked for and
what the backend made of it (published host ports, addresses, the image
really run).

``state`` is what the pod's container is doing: ``RUNNING`` (started; the
API shows PROVISIONING, STARTING, then RUNNING as the ready delay passes),
``EXITED`` (stopped) or ``ERROR``. A terminated pod is forgotten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PodState = Literal["RUNNING", "EXITED", "ERROR"]
CloudType = Literal["SECURE", "COMMUNITY"]
#: Most lifecycle events kept per pod (the ``system`` log source).
MAX_EVENTS = 100


class PodEvent(BaseModel):
    """One line of a pod's system log."""

    ts: datetime
    line: str


class PodRecord(BaseModel):
    """Everything the local cloud knows about one pod."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    #: The image the client asked for (what the API shows).
    image: str
    #: The image really run (``image`` if the engine has it, else a stand-in).
    runtime_image: str
    args: str = ""
    disk: int = 50
    ports: list[str] = Field(default_factory=list)
    #: The env the client asked for (what the API shows).
    env: dict[str, str] = Field(default_factory=dict)
    #: Variables added at create (PUBLIC_KEY from startSsh, JUPYTER_PASSWORD): in the container, not in the API.
    injected_env: dict[str, str] = Field(default_factory=dict)
    gpu_type_id: str
    gpu_count: int
    cloud: CloudType
    data_center_id: str
    cuda_version: str | None = None
    #: ``mounts.persistent``: size in GB and mount path, or None.
    persistent_size: int | None = None
    persistent_path: str | None = None
    locked: bool = False
    #: What the client asked for; takes effect at the next container start.
    global_networking: bool = False
    state: PodState
    created_at: datetime
    #: When the current (or last) container started.
    started_at: datetime | None = None
    #: How many times a container of this pod was started (1: still the first boot, which provisions).
    boots: int = 0
    #: Fault injection: the API keeps showing PROVISIONING.
    stuck_provisioning: bool = False
    machine_id: str
    vcpu_count: int
    memory_in_gb: int
    #: Published host port per pod port, e.g. {"22": 20517}; only tcp ports.
    host_ports: dict[str, int] = Field(default_factory=dict)
    #: The pod's address on the cloud's pod network.
    private_ip: str | None = None
    #: The pod's address on the global network, while it has global networking.
    global_ip: str | None = None
    #: True while a network cut (fault injection) is in force.
    network_cut: bool = False
    events: list[PodEvent] = Field(default_factory=list)

    def tcp_ports(self) -> list[int]:
        """Return the pod's ports exposed as tcp (the ones published on the host)."""
        return [int(p.split("/")[0]) for p in self.ports if p.endswith("/tcp")]

    def container_env(self) -> dict[str, str]:
        """Return the requested env plus the injected variables (the requested ones win)."""
        return {**self.injected_env, **self.env}

    def with_event(self, moment: datetime, line: str) -> PodRecord:
        """Return a copy with one more system log line (the oldest dropped past MAX_EVENTS)."""
        events = [*self.events, PodEvent(ts=moment, line=line)][-MAX_EVENTS:]
        return self.model_copy(update={"events": events})


class StateFile(BaseModel):
    """The layout of ``<state-dir>/state.json``."""

    version: Literal[2] = 2
    backend: str
    ssh_keys: list[str] = Field(default_factory=list)
    pods: dict[str, PodRecord] = Field(default_factory=dict)
