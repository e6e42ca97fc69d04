"""The deployment's pods as the inventory knows them: the pods file the app role renders (pods_file).

The role (gpuops.platform.app, tasks/pods.yml) writes it from the hostvars of the inventory's pod group at every
deployment, whatever holds Terraform's state: each pod's id, Slurm node name, GPUs, price, global networking and
its SSH endpoint (ssh.direct, and the HostKeyAlias its host key is pinned under). The API never asks the cloud
for an SSH endpoint; it asks the cloud only for a pod's live status, cost and uptime (upstreams/cloud.py).
The file is read again whenever it is replaced or changes (inode, mtime, size), so a deployment that changes the
pods reaches a running API without a restart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UpstreamError

#: The pods file's format (the role's template writes it as "format").
FORMAT = 1
#: What to run when the file is missing or broken.
HINT = "run ansible-playbook playbooks/stack.yml (or site.yml): the app role renders it from the inventory"


class _Ssh(BaseModel):
    model_config = ConfigDict(extra="ignore")

    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    host_key_alias: str | None = None


class _GlobalNetworking(BaseModel):
    model_config = ConfigDict(extra="ignore")

    enabled: bool = False


class _Pod(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    id: str = Field(min_length=1)
    node: str = Field(min_length=1)
    gpu_type_id: str | None = None
    gpu_count: int = Field(0, ge=0)
    cost_per_hr: float | None = None
    role: str = "compute"
    global_networking: _GlobalNetworking = Field(default_factory=_GlobalNetworking)
    ssh: _Ssh = Field(default_factory=_Ssh)


class _File(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: int
    pods: list[_Pod]


@dataclass(frozen=True)
class InventoryPod:
    """One pod of the deployment, as the inventory had it when the pods file was rendered."""

    name: str
    id: str
    #: The pod's Slurm node name (slurm_node_name, else its inventory name).
    node: str
    gpu_type_id: str
    gpu_count: int
    #: USD per hour when the inventory was read (the cloud's live figure wins where the API has it).
    cost_per_hr: float | None
    role: str
    #: The pods reach each other (RunPod's global networking); without it a job runs on one node.
    global_networking: bool
    ssh_host: str | None
    ssh_port: int | None
    #: The HostKeyAlias the pod's host key is pinned under (runpod-<podId>-<startedAt epoch>).
    host_key_alias: str | None


class PodsFile:
    """The pods file, parsed again only when it was replaced (inode) or its modification time or size changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._pods: dict[str, InventoryPod] = {}

    def pods(self) -> dict[str, InventoryPod]:
        """Pods by name (sorted); empty when the file does not exist (nothing deployed yet)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._pods = None, {}
            return {}
        except OSError as err:
            raise self._error(err.strerror or str(err)) from None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._pods = self._load()
            self._stamp = stamp
        return self._pods

    def by_node(self, node: str) -> InventoryPod | None:
        """The pod whose Slurm node name is `node` (else whose id or inventory name is: older node names)."""
        pods = self.pods()
        return (next((pod for pod in pods.values() if pod.node == node), None)
                or next((pod for pod in pods.values() if pod.id == node), None)
                or pods.get(node))

    def _error(self, why: str) -> UpstreamError:
        return UpstreamError("inventory", f"cannot read the deployment's pods file {self.path}: {why}; {HINT}")

    def _load(self) -> dict[str, InventoryPod]:
        try:
            data = json.loads(self.path.read_bytes())
        except OSError as err:
            raise self._error(err.strerror or str(err)) from None
        except ValueError:
            raise self._error("not JSON") from None
        if isinstance(data, dict) and data.get("format") not in (None, FORMAT):
            raise self._error(f"format {data.get('format')!r}, this API reads format {FORMAT}")
        try:
            parsed = _File.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(file)"
            raise self._error(f"{where}: {first['msg']}") from None
        pods: dict[str, InventoryPod] = {}
        for pod in sorted(parsed.pods, key=lambda p: p.name):
            if pod.name in pods:
                raise self._error(f"pod {pod.name!r} is listed twice")
            pods[pod.name] = InventoryPod(
                name=pod.name, id=pod.id, node=pod.node, gpu_type_id=pod.gpu_type_id or "",
                gpu_count=pod.gpu_count, cost_per_hr=pod.cost_per_hr, role=pod.role,
                global_networking=pod.global_networking.enabled, ssh_host=pod.ssh.host, ssh_port=pod.ssh.port,
                host_key_alias=pod.ssh.host_key_alias)
        return pods
