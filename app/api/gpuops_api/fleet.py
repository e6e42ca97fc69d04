"""The deployment's pods: the inventory's record of them (the pods file) joined with the cloud's live view (REST v2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .upstreams import _runpod_api as runpod
from .upstreams.cloud import CloudClient
from .podsfile import InventoryPod, PodsFile

STATUSES = (*runpod.POD_STATUSES, "UNKNOWN")


class Fleet:
    """Pods with status, uptime and cost.

    Cost is the pod's ``cost`` (USD/h, 0 once stopped), else the inventory's figure. Uptime comes from the
    cloud (``runtime.uptime``, else ``startedAt``), else from the first time this process saw the pod running.
    The SSH endpoint is the inventory's (ssh.direct when the pods file was rendered), shown while the pod runs.
    """

    def __init__(self, state: PodsFile, cloud: CloudClient, clock: Callable[[], float]) -> None:
        self.state = state
        self.cloud = cloud
        self.clock = clock
        self._first_seen: dict[str, float] = {}

    def names(self) -> dict[str, InventoryPod]:
        return self.state.pods()

    def by_node(self, node: str) -> InventoryPod | None:
        """The pod that is Slurm's node `node` (the inventory's record: no cloud request)."""
        return self.state.by_node(node)

    async def pods(self) -> list[dict[str, Any]]:
        recorded = sorted(self.state.pods().values(), key=lambda pod: pod.name)
        live = await asyncio.gather(*(self.cloud.pod(pod.id) for pod in recorded))
        now = self.clock()
        return [self._view(pod, info, now) for pod, info in zip(recorded, live, strict=True)]

    async def pod(self, name: str) -> dict[str, Any] | None:
        recorded = self.state.pods().get(name)
        if recorded is None:
            return None
        return self._view(recorded, await self.cloud.pod(recorded.id), self.clock())

    def _view(self, pod: InventoryPod, info: runpod.Pod | None, now: float) -> dict[str, Any]:
        if info is None:  # the cloud no longer knows the pod: RunPod answers 404 once it is gone
            status, cost = "TERMINATED", None
        else:
            status = info.status if info.status in STATUSES else "UNKNOWN"
            cost = info.cost
        if cost is None:
            cost = pod.cost_per_hr if pod.cost_per_hr is not None else 0.0
        uptime = None
        if info is not None and status == "RUNNING":
            if info.uptime is not None and info.uptime >= 0:
                uptime = info.uptime
            else:
                started = info.started_at_epoch
                uptime = max(0, int(now - (started if started is not None else self._first_seen.setdefault(pod.id, now))))
        else:
            self._first_seen.pop(pod.id, None)
        return {
            "name": pod.name,
            "id": pod.id,
            "status": status,
            "role": pod.role,
            "gpu_type": pod.gpu_type_id,
            "gpu_count": pod.gpu_count,
            "cost_per_hr": cost,
            "uptime_seconds": uptime,
            "cost_so_far": round(cost * uptime / 3600, 4) if uptime is not None else None,
            # A stopped pod's recorded address is no longer its address.
            "public_ip": pod.ssh_host if status == "RUNNING" else None,
            "ssh_port": pod.ssh_port if status == "RUNNING" else None,
        }
