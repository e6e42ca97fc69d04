"""The interface every backend implements, and what backends share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from localcloud.records import PodRecord

#: The DNS suffix of global-networking pods, as on RunPod: ``<podId>.runpod.internal``.
INTERNAL_DNS_SUFFIX = "runpod.internal"


def internal_dns(pod_id: str) -> str:
    """Return a global-networking pod's internal DNS name."""
    return f"{pod_id}.{INTERNAL_DNS_SUFFIX}"


class BackendError(Exception):
    """A backend operation failed (answered as HTTP 500 with this message)."""


class BackendUnavailable(BackendError):
    """The backend cannot be used at all (e.g. Docker is not reachable)."""


@dataclass(frozen=True)
class Runtime:
    """What a backend made of a pod when it (re)created its container."""

    host_ports: dict[str, int]
    private_ip: str | None
    #: The address on the global network; None unless the pod has global networking.
    global_ip: str | None = None


@dataclass(frozen=True)
class Observed:
    """What a backend sees of a pod right now (the Docker backend: its container)."""

    pod_id: str
    running: bool
    #: The record the container was labelled with when it was created.
    record: PodRecord | None


@dataclass(frozen=True)
class LogLine:
    """One line a pod's container wrote."""

    ts: datetime
    line: str


def runpod_environment(record: PodRecord, public_ip: str) -> dict[str, str]:
    """Return a pod's environment: the requested (and injected) env plus RunPod's in-pod variables.

    RunPod's own variables win over requested ones of the same name.
    ``RUNPOD_API_KEY`` is not set: the local cloud gives pods no API key.
    The simulated GPUs are described in a file, not in the environment (see
    the docker backend's ``SIMULATED_GPUS_FILE``), as RunPod sets no such variable.
    """
    env = record.container_env()
    env.update(
        {
            "RUNPOD_POD_ID": record.id,
            "RUNPOD_POD_HOSTNAME": record.id,
            "RUNPOD_PUBLIC_IP": public_ip,
            "RUNPOD_GPU_COUNT": str(record.gpu_count),
            "RUNPOD_CPU_COUNT": str(record.vcpu_count),
            "RUNPOD_MEM_GB": str(record.memory_in_gb),
            "RUNPOD_DC_ID": record.data_center_id,
        }
    )
    for port, host_port in sorted(record.host_ports.items()):
        env[f"RUNPOD_TCP_PORT_{port}"] = str(host_port)
    return env


class PodBackend(ABC):
    """Makes pods real. The service owns the records and calls these under a per-pod lock.

    Methods get the pod's current record (for ``recreate``: the updated one)
    and return what changed; they never persist anything themselves. As on
    RunPod, every container start is a fresh container from the image (the
    container disk is wiped); only the persistent mount survives.
    """

    #: Backend name, as given to ``--backend`` and stored in state.json.
    name: ClassVar[str]
    #: The public address pods of this backend get (``ssh.direct.host``).
    public_ip: ClassVar[str] = "127.0.0.1"

    def adopt(self, records: Iterable[PodRecord]) -> None:  # noqa: B027 - optional hook
        """Take note of recovered records (reserve their ports and addresses)."""

    @abstractmethod
    def resolve_image(self, image: str) -> str:
        """Return the image really run for ``image``; raise BadRequest if none."""

    @abstractmethod
    def recreate(self, record: PodRecord, *, start: bool) -> Runtime:
        """Replace the pod's container (if any) with a fresh one from ``record``; start it if asked.

        Used for create, start, restart and changes that need a new container.
        ``record.global_networking`` says whether it joins the global network.
        """

    @abstractmethod
    def stop(self, record: PodRecord) -> None:
        """Stop a running pod, keeping its persistent mount."""

    @abstractmethod
    def kill(self, record: PodRecord) -> None:
        """Kill the pod abruptly (host failure, fault injection)."""

    @abstractmethod
    def remove(self, record: PodRecord) -> None:
        """Delete the pod and everything it holds."""

    @abstractmethod
    def cut_network(self, record: PodRecord) -> None:
        """Make the pod unreachable (published ports and private networks)."""

    @abstractmethod
    def restore_network(self, record: PodRecord) -> None:
        """Undo ``cut_network``."""

    def logs(self, record: PodRecord, *, tail: int, since: datetime | None) -> list[LogLine]:
        """Return the last ``tail`` lines the pod's container wrote (after ``since``), oldest first."""
        return []

    def observe(self, pod_id: str | None = None) -> dict[str, Observed] | None:
        """Return what really exists, by pod id (one pod if ``pod_id``); None if nothing to observe."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
