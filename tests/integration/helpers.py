"""Shared helpers of the integration tests."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def docker_available() -> bool:
    """True when a Docker engine answers."""
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], check: bool = True, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command from the repository root; on failure show its output."""
    environ = dict(env if env is not None else os.environ)
    environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    environ["ANSIBLE_NOCOLOR"] = "1"
    environ["ANSIBLE_FORCE_COLOR"] = "0"
    result = subprocess.run(cmd, cwd=REPO, env=environ, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def localcloud_api(port: int, key_file: Path) -> httpx.Client:
    """An HTTP client for the local cloud's /v1 API."""
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}/v1",
        headers={"Authorization": f"Bearer {key_file.read_text().strip()}"},
        timeout=30,
    )
