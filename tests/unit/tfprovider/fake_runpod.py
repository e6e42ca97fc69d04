"""A tiny in-test RunPod REST v1 (pods only) for the stand-in provider's unit tests.

It records every request, checks the bearer key, answers 400 for unknown GPU
types like RunPod, and can be told to fail the next request.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

GPU_PRICES = {"NVIDIA GeForce RTX 4090": 0.69, "NVIDIA A40": 0.4}


@dataclass
class Recorded:
    """One request the fake saw."""

    method: str
    path: str
    body: Optional[dict[str, Any]]
    authorization: Optional[str]


@dataclass
class FakeRunPod:
    """State of the fake API, shared with its request handler."""

    api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: Optional[tuple[int, str]] = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Optional[ThreadingHTTPServer] = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def new_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        """A pod record as RunPod would return it for a create body."""
        gpu = body.get("gpuTypeIds", ["NVIDIA GeForce RTX 4090"])[0]
        count = body.get("gpuCount", 1)
        pod_id = secrets.token_hex(7)
        return {
            "id": pod_id,
            "name": body.get("name", "my pod"),
            "image": body.get("imageName", ""),
            "desiredStatus": "RUNNING",
            "interruptible": body.get("interruptible", False),
            "gpu": {"id": gpu, "count": count, "displayName": gpu},
            "costPerHr": round(GPU_PRICES[gpu] * count, 2),
            "memoryInGb": 62,
            "vcpuCount": 16,
            "containerDiskInGb": body.get("containerDiskInGb", 50),
            "volumeInGb": body.get("volumeInGb", 20),
            "volumeMountPath": body.get("volumeMountPath", "/workspace"),
            # RunPod returns ports as a list, in its own order.
            "ports": sorted(body.get("ports", ["8888/http", "22/tcp"])),
            "env": dict(sorted(body.get("env", {}).items(), reverse=True)),
            "locked": False,
            "lastStartedAt": "2025-01-01T00:00:00.000Z",
            "publicIp": None,
            "portMappings": None,
            "machine": {"secureCloud": body.get("cloudType", "SECURE") == "SECURE", "gpuTypeId": gpu},
        }


def _handler(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Stay quiet."""

        def _send(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Optional[dict[str, Any]]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _handle(self) -> None:
            body = self._body()
            auth = self.headers.get("Authorization")
            with fake.lock:
                fake.requests.append(Recorded(self.command, self.path, body, auth))
                failure, fake.fail_next = fake.fail_next, None
            if failure:
                return self._send(failure[0], {"error": failure[1]})
            if auth != f"Bearer {fake.api_key}":
                return self._send(401, {"error": "Unauthorized: invalid API key"})
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] != ["v1", "pods"]:
                return self._send(404, {"error": "not found"})
            if len(parts) == 2 and self.command == "POST":
                return self._create(body or {})
            if len(parts) == 2 and self.command == "GET":
                return self._send(200, list(fake.pods.values()))
            pod = fake.pods.get(parts[2]) if len(parts) == 3 else None
            if pod is None:
                return self._send(404, {"error": "pod not found"})
            if self.command == "GET":
                return self._send(200, pod)
            if self.command == "PATCH":
                pod.update({k: v for k, v in (body or {}).items() if k != "imageName"})
                if body and "imageName" in body:
                    pod["image"] = body["imageName"]
                return self._send(200, pod)
            if self.command == "DELETE":
                del fake.pods[parts[2]]
                return self._send(204)
            return self._send(405, {"error": "method not allowed"})

        def _create(self, body: dict[str, Any]) -> None:
            unknown = [g for g in body.get("gpuTypeIds", []) if g not in GPU_PRICES]
            if unknown:
                return self._send(400, {"error": f"gpuTypeIds: unknown GPU type {unknown[0]!r}"})
            pod = fake.new_pod(body)
            fake.pods[pod["id"]] = pod
            self._send(201, pod)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


def start_fake() -> FakeRunPod:
    """Start a fake on a free port of 127.0.0.1 (stop it with :func:`stop_fake`)."""
    fake = FakeRunPod()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return fake


def stop_fake(fake: FakeRunPod) -> None:
    """Stop the fake's server."""
    if fake.server is not None:
        fake.server.shutdown()
        fake.server.server_close()
