"""Fixtures for the localcloud unit tests: an in-process API on the memory backend.

Self-contained (no dependency on tests/conftest.py). Time is a ManualClock
injected into the app, so the ready delay is tested by moving the clock.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.api import create_app
from localcloud.backends.base import PodBackend
from localcloud.clock import ManualClock
from localcloud.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx vs httpx2
    from fastapi.testclient import TestClient

READY_DELAY = 3.0

MakeClient = Callable[..., TestClient]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh state directory."""
    return tmp_path / "state"


@pytest.fixture
def clock() -> ManualClock:
    """The app's clock; tests advance it instead of sleeping."""
    return ManualClock()


@pytest.fixture
def make_client(state_dir: Path, clock: ManualClock) -> Iterator[MakeClient]:
    """Factory of API clients; each call builds a new app (a server restart) on the state dir.

    Keyword arguments: ``authorized`` (default True: send the right bearer
    key), ``backend`` (a PodBackend instance; default memory), ``delay``
    (ready delay, default 3 s), ``state`` (another state dir).
    """
    clients: list[TestClient] = []

    def make(
        *,
        authorized: bool = True,
        backend: PodBackend | None = None,
        delay: float = READY_DELAY,
        state: Path | None = None,
    ) -> TestClient:
        settings = Settings(state_dir=state or state_dir, backend="memory", ssh_ready_delay=delay)
        app = create_app(settings, backend=backend, clock=clock)
        headers = {}
        if authorized:
            headers["Authorization"] = f"Bearer {settings.api_key_file.read_text().strip()}"
        client = TestClient(app, headers=headers)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    """An authorized client of a memory-backend app."""
    return make_client()


@pytest.fixture
def pod_body() -> dict[str, Any]:
    """A valid v2 create body (CreatePodRequest), as the Terraform provider would send it."""
    return {
        "name": "trainer-0",
        "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 2},
        "cloud": "SECURE",
        "ports": ["22/tcp", "8888/http"],
        "env": {"PUBLIC_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ydW5pdHRlc3RzMDEyMzQ1Njc4OQ test"},
        "disk": 20,
        "mounts": {"persistent": {"size": 10, "path": "/workspace"}},
    }


@pytest.fixture
def create_pod(client: TestClient, pod_body: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Create a pod (overriding body fields with keyword arguments) and return its JSON."""

    def create(**overrides: Any) -> dict[str, Any]:
        resp = client.post("/v2/pods", json={**pod_body, **overrides})
        assert resp.status_code == 201, resp.text
        return resp.json()

    return create
