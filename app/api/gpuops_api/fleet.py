"""The deployment's pods: Terraform's record of them joined with the cloud's live view."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .upstreams.cloud import CloudClient
from .upstreams.terraform import TerraformState, TfPod

STATUSES = ("RUNNING", "EXITED", "TERMINATED", "UNKNOWN")


def _started_at(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo else None


def _float(value: Any) -> float | None:
    # RunPod's OpenAPI shows costPerHr as a number or a numeric string.
    try:
        return float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


class Fleet:
    """Pods with status, uptime and cost. Uptime comes from the cloud (runtime.uptimeInSeconds, else
    lastStartedAt), else from the first time this process saw the pod running."""

    def __init__(self, state: TerraformState, cloud: CloudClient, clock: Callable[[], float]) -> None:
        self.state = state
        self.cloud = cloud
        self.clock = clock
        self._first_seen: dict[str, float] = {}

    def names(self) -> dict[str, TfPod]:
        return self.state.pods()

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

    def _view(self, pod: TfPod, info: dict[str, Any] | None, now: float) -> dict[str, Any]:
        if info is None:  # the cloud no longer knows the pod: RunPod answers 404 once it is gone
            status = "TERMINATED"
            info = {}
        else:
            status = str(info.get("desiredStatus") or "UNKNOWN").upper()
            status = status if status in STATUSES else "UNKNOWN"
        cost = _float(info.get("costPerHr"))
        cost = pod.cost_per_hr if cost is None else cost
        uptime = None
        if status == "RUNNING":
            runtime = info.get("runtime")
            reported = runtime.get("uptimeInSeconds") if isinstance(runtime, dict) else None
            if isinstance(reported, int) and not isinstance(reported, bool) and reported >= 0:
                uptime = reported  # RunPod's GraphQL shape, should the REST API ever carry it
            else:
                started = _started_at(info.get("lastStartedAt")) or self._first_seen.setdefault(pod.id, now)
                uptime = max(0, int(now - started))
        else:
            self._first_seen.pop(pod.id, None)
        ports = info.get("portMappings")
        ssh_port = ports.get("22") if isinstance(ports, dict) else None
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
            "public_ip": info.get("publicIp") if isinstance(info.get("publicIp"), str) else None,
            "ssh_port": ssh_port if isinstance(ssh_port, int) and not isinstance(ssh_port, bool) else None,
        }
