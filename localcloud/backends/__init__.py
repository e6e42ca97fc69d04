"""Backends that make pods real: Docker containers, or in-memory records."""

from __future__ import annotations

from localcloud.backends.base import BackendError, BackendUnavailable, PodBackend
from localcloud.config import Settings

__all__ = ["BackendError", "BackendUnavailable", "PodBackend", "make_backend"]


def make_backend(settings: Settings) -> PodBackend:
    """Build the backend named by ``settings.backend``."""
    if settings.backend == "memory":
        from localcloud.backends.memory import MemoryBackend

        return MemoryBackend(host_port_range=settings.host_port_range)
    if settings.backend == "docker":
        from localcloud.backends.docker import DockerBackend

        return DockerBackend(
            network=settings.network,
            cloud_id=settings.cloud_id,
            default_image=settings.pod_image_default,
            pytorch_standin_image=settings.pytorch_standin_image,
            host_port_range=settings.host_port_range,
        )
    raise ValueError(f"unknown backend {settings.backend!r}; choose docker or memory")
