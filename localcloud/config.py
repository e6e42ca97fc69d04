"""Settings of one local cloud, and where its files live in the state directory."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BackendName = Literal["docker", "memory"]

DEFAULT_STATE_DIR = ".gpuops/localcloud"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_BACKEND: BackendName = "docker"
DEFAULT_SSH_READY_DELAY = 3.0
DEFAULT_POD_IMAGE = "gpuops/pod:bookworm"
DEFAULT_NETWORK = "gpuops-localcloud"
#: What a ``runpod/pytorch:*`` image runs when the engine lacks it (built by images/runpod-pytorch-standin);
#: without it such pods are refused, never run on the default image.
DEFAULT_PYTORCH_STANDIN_IMAGE = "gpuops/runpod-pytorch-standin:latest"
#: Requests per window (minute, hour, day) one API key may make, announced in ``RateLimit-Policy``.
DEFAULT_RATE_LIMITS = (6000, 100_000, 1_000_000)
#: Host ports handed out for published pod ports (below Linux's ephemeral range).
DEFAULT_HOST_PORT_RANGE = (20000, 32000)

ENV_STATE_DIR = "GPUOPS_LOCALCLOUD_STATE_DIR"
ENV_PORT = "GPUOPS_LOCALCLOUD_PORT"


@dataclass(frozen=True)
class Settings:
    """Everything that configures one local cloud server."""

    state_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backend: BackendName = DEFAULT_BACKEND
    ssh_ready_delay: float = DEFAULT_SSH_READY_DELAY
    pod_image_default: str = DEFAULT_POD_IMAGE
    network: str = DEFAULT_NETWORK
    host_port_range: tuple[int, int] = DEFAULT_HOST_PORT_RANGE
    pytorch_standin_image: str = DEFAULT_PYTORCH_STANDIN_IMAGE
    rate_limits: tuple[int, int, int] = DEFAULT_RATE_LIMITS

    @property
    def api_key_file(self) -> Path:
        """``<state-dir>/api_key``: the bearer key (0600)."""
        return self.state_dir / "api_key"

    @property
    def state_file(self) -> Path:
        """``<state-dir>/state.json``: the pod records."""
        return self.state_dir / "state.json"

    @property
    def pid_file(self) -> Path:
        """``<state-dir>/server.pid``: the pid of the running server."""
        return self.state_dir / "server.pid"

    @property
    def server_file(self) -> Path:
        """``<state-dir>/server.json``: how the running server was started (url, backend, ...)."""
        return self.state_dir / "server.json"

    @property
    def log_file(self) -> Path:
        """``<state-dir>/server.log``: the daemon's log (JSON lines)."""
        return self.state_dir / "server.log"

    @property
    def url(self) -> str:
        """The REST base URL clients use, e.g. ``http://127.0.0.1:8765/v2``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2"

    @property
    def global_network(self) -> str:
        """The Docker network of global-networking pods (``<network>-global``)."""
        return f"{self.network}-global"

    @property
    def cloud_id(self) -> str:
        """A short id of this cloud, derived from the state directory's real path.

        Docker objects carry it as a label, so that clouds with different
        state directories on one Docker engine never adopt or purge each
        other's containers.
        """
        return hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:12]


def default_state_dir() -> Path:
    """Return ``$GPUOPS_LOCALCLOUD_STATE_DIR``, else ``.gpuops/localcloud`` under the cwd."""
    return Path(os.environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR)
