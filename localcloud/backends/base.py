"""The interface every backend implements, and what backends share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from localcloud.records import PodRecord


class BackendError(Exception):
    """A backend operation failed (answered as HTTP 500 with this message)."""


class BackendUnavailable(BackendError):
    """The backend cannot be used at all (e.g. Docker is not reachable)."""


@dataclass(frozen=True)
class Runtime:
    """What a backend made of a pod when it (re)created or started it."""

    host_ports: dict[str, int]
    private_ip: str | None


@dataclass(frozen=True)
class Observed:
    """What a backend sees of a pod right now (the Docker backend: its container)."""

    pod_id: str
    running: bool
    #: The record the container was labelled with when it was created.
    record: PodRecord | None


def runpod_environment(record: PodRecord, public_ip: str) -> dict[str, str]:
    """Return a pod's environment: the requested env plus RunPod's in-pod variables.

    RunPod's own variables win over requested ones of the same name.
    ``RUNPOD_API_KEY`` is not set: the local cloud gives pods no API key.
    ``GPUOPS_SIM_GPU_*`` record the rented GPUs for simulated GPU tooling.
    """
    env = dict(record.env)
    env.update(
        {
            "RUNPOD_POD_ID": record.id,
            "RUNPOD_POD_HOSTNAME": record.id,
            "RUNPOD_PUBLIC_IP": public_ip,
            "RUNPOD_GPU_COUNT": str(record.gpu_count),
            "RUNPOD_CPU_COUNT": str(record.vcpu_count),
            "RUNPOD_MEM_GB": str(record.memory_in_gb),
            "RUNPOD_DC_ID": record.data_center_id,
            "GPUOPS_LOCALCLOUD": "1",
            "GPUOPS_SIM_GPU_TYPE": record.gpu_type_id,
            "GPUOPS_SIM_GPU_COUNT": str(record.gpu_count),
        }
    )
    for port, host_port in sorted(record.host_ports.items()):
        env[f"RUNPOD_TCP_PORT_{port}"] = str(host_port)
    return env


class PodBackend(ABC):
    """Makes pods real. The service owns the records and calls these under a per-pod lock.

    Methods get the pod's current record (for ``recreate``: the updated one)
    and return what changed; they never persist anything themselves.
    """

    #: Backend name, as given to ``--backend`` and stored in state.json.
    name: ClassVar[str]
    #: The ``publicIp`` pods of this backend get once ready.
    public_ip: ClassVar[str] = "127.0.0.1"

    def adopt(self, records: Iterable[PodRecord]) -> None:  # noqa: B027 - optional hook
        """Take note of recovered records (reserve their ports and addresses)."""

    @abstractmethod
    def resolve_image(self, image_name: str) -> str:
        """Return the image really run for ``image_name``; raise BadRequest if none."""

    @abstractmethod
    def create(self, record: PodRecord) -> Runtime:
        """Create the pod and start it."""

    @abstractmethod
    def start(self, record: PodRecord) -> Runtime:
        """Start a stopped pod (re-creating it if its container vanished)."""

    @abstractmethod
    def stop(self, record: PodRecord) -> None:
        """Stop a running pod, keeping it."""

    @abstractmethod
    def restart(self, record: PodRecord) -> Runtime:
        """Restart a running pod in place."""

    @abstractmethod
    def recreate(self, record: PodRecord, *, start: bool) -> Runtime:
        """Replace the pod with a fresh one from ``record`` (RunPod's reset); start it if asked."""

    @abstractmethod
    def remove(self, record: PodRecord) -> None:
        """Delete the pod and everything it holds."""

    @abstractmethod
    def interrupt(self, record: PodRecord) -> None:
        """Kill the pod abruptly, as a spot preemption does."""

    @abstractmethod
    def cut_network(self, record: PodRecord) -> None:
        """Make the pod unreachable (published ports and private network)."""

    @abstractmethod
    def restore_network(self, record: PodRecord) -> None:
        """Undo ``cut_network``."""

    def observe(self, pod_id: str | None = None) -> dict[str, Observed] | None:
        """Return what really exists, by pod id (one pod if ``pod_id``); None if nothing to observe."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
