"""GET /v2/pods/{id}/logs streams as RunPod's does: the backfill, then new lines, open while the pod runs.

A real HTTP server (uvicorn, in a thread) around the memory backend: the
in-process TestClient buffers a whole body, so it cannot see a stream that
stays open.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from localcloud.api import create_app
from localcloud.config import Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(state_dir=tmp_path / "state", backend="memory", ssh_ready_delay=0)
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    key = settings.api_key_file.read_text().strip()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/v2", headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as client:
        yield client
    srv.should_exit = True
    thread.join(10)


def _pod(client: httpx.Client) -> dict[str, Any]:
    body = {"name": "logs", "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
            "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}, "ports": ["22/tcp"]}
    created = client.post("/pods", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def test_the_stream_stays_open_while_the_pod_runs_and_brings_new_lines(server: httpx.Client) -> None:
    pod = _pod(server)
    got: list[str] = []
    ended = threading.Event()

    def read() -> None:
        with server.stream("GET", f"/pods/{pod['id']}/logs", params={"source": "system"}, timeout=30) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            assert resp.headers["cache-control"] == "no-cache" and resp.headers["x-accel-buffering"] == "no"
            for line in resp.iter_lines():
                got.append(line)
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(2)
    assert not ended.is_set(), "the stream ended while the pod runs"
    backfill = [line for line in got if line.startswith("data: ")]
    assert backfill and all('"source": "system"' in line for line in backfill)
    # A new line of the pod's log (stopping it writes one) comes on the open stream; then it ends.
    assert server.post(f"/pods/{pod['id']}/action", json={"action": "stop"}).status_code == 200
    assert ended.wait(10), "the stream did not end after the pod stopped"
    lines = [line for line in got if line.startswith("data: ")]
    assert len(lines) > len(backfill) and "stopped" in lines[-1]
    ids = [line for line in got if line.startswith("id: ")]
    assert len(ids) == len(set(ids)) == len(lines)


def test_errors_are_problems(server: httpx.Client) -> None:
    missing = server.get("/pods/nope/logs")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    pod = _pod(server)
    for params in ({"tail": 5001}, {"tail": -1}, {"source": "all"}, {"since": "yesterday"}):
        resp = server.get(f"/pods/{pod['id']}/logs", params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    assert server.get(f"/pods/{pod['id']}/logs", headers={"Authorization": "Bearer wrong"}).status_code == 401
