"""A tiny in-test RunPod REST v2 (pods only) for the stand-in provider's unit tests.

Its contract is RunPod's own OpenAPI (localcloud/reference/runpod-rest-v2-openapi.json):
every request body is validated against CreatePodRequest / UpdatePodRequest /
PodActionRequest (unknown fields rejected by name, 400 problem+json with
``errors``), and every pod it answers with is validated against ``Pod``, so the
fake cannot drift from the spec. It records every request, checks the bearer
key, answers 400 for unknown GPU types, and can be told to fail the next request.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_FILE = Path(__file__).resolve().parents[3] / "localcloud" / "reference" / "runpod-rest-v2-openapi.json"
SPEC = json.loads(SPEC_FILE.read_text())
_REGISTRY = Registry().with_resource("spec", DRAFT202012.create_resource(SPEC))
GPU_PRICES = {"NVIDIA GeForce RTX 4090": 0.69, "NVIDIA A40": 0.4}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"spec#/components/schemas/{name}"}, registry=_REGISTRY)


VALIDATORS = {name: _validator(name) for name in ("CreatePodRequest", "UpdatePodRequest", "PodActionRequest", "Pod")}


def spec_errors(schema: str, body: Any) -> list[str]:
    """Why ``body`` is not a valid ``schema`` of the v2 OpenAPI (empty when it is)."""
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in VALIDATORS[schema].iter_errors(body))


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
    fail_next: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Optional[ThreadingHTTPServer] = None

    @property
    def host_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def new_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        """A pod as RunPod v2 returns it for a create body (status PROVISIONING)."""
        gpu = body.get("gpu") or {}
        count = gpu.get("count", 1)
        pod_id = secrets.token_hex(7)
        mounts = body.get("mounts") or {}
        pod = {
            "id": pod_id,
            "name": body["name"],
            "status": "PROVISIONING",
            "actions": ["stop", "terminate"],
            "image": body.get("image", ""),
            "args": body.get("args", ""),
            "disk": body.get("disk", 50),
            "mounts": mounts,
            # RunPod returns ports in its own order.
            "ports": sorted(body.get("ports", [])),
            "env": dict(body.get("env", {})),
            "registry": body.get("registry"),
            "gpu": {"id": gpu.get("id", ""), "count": count},
            "cloud": body.get("cloud", "SECURE"),
            "dataCenterId": (body.get("dataCenterIds") or ["EU-RO-1"])[0],
            "cudaVersion": "12.8",
            "ssh": {"proxy": None, "direct": None},
            "template": None,
            "cost": round(GPU_PRICES.get(gpu.get("id", ""), 0.5) * count, 2),
            "locked": False,
            "globalNetworking": (
                {"enabled": True, "ip": "10.65.0.2", "internalDns": f"{pod_id}.runpod.internal"}
                if body.get("globalNetworking")
                else {"enabled": False}
            ),
            "runtime": None,
            "createdAt": "2026-12-01T00:00:00Z",
            "startedAt": None,
        }
        return pod


def _handler(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Stay quiet."""

        def _send(self, status: int, body: Any = None, headers: Optional[dict[str, str]] = None) -> None:
            if isinstance(body, dict) and body.get("id"):
                problems = spec_errors("Pod", body)
                assert not problems, f"the fake answered a pod that is not a v2 Pod: {problems}"
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                kind = "application/problem+json" if status >= 400 else "application/json"
                self.send_header("Content-Type", kind)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _problem(self, status: int, title: str, detail: str, errors: Optional[list[str]] = None) -> None:
            body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
            if errors:
                body["errors"] = errors
            self._send(status, body)

        def _body(self) -> Optional[dict[str, Any]]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _checked(self, schema: str, body: Any) -> bool:
            problems = spec_errors(schema, body)
            if problems:
                self._problem(400, "Bad Request", "request body failed validation", problems)
                return False
            return True

        def _handle(self) -> None:  # noqa: C901 - a router
            body = self._body()
            auth = self.headers.get("Authorization")
            with fake.lock:
                fake.requests.append(Recorded(self.command, self.path, body, auth))
                failure = fake.fail_next.pop(0) if fake.fail_next else None
            if failure:
                return self._send(failure[0], {"title": "Injected", "status": failure[0], "detail": failure[1]}, failure[2])
            if auth != f"Bearer {fake.api_key}":
                return self._problem(401, "Unauthorized", "invalid API key")
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] != ["v2", "pods"]:
                return self._problem(404, "Not Found", f"no route {self.path}")
            if len(parts) == 2 and self.command == "POST":
                return self._create(body)
            if len(parts) == 2 and self.command == "GET":
                return self._send(200, {"pods": list(fake.pods.values())})
            pod = fake.pods.get(parts[2])
            if pod is None:
                return self._problem(404, "Not Found", "pod not found")
            if len(parts) == 4 and parts[3] == "action" and self.command == "POST":
                return self._action(pod, body)
            if len(parts) != 3:
                return self._problem(404, "Not Found", f"no route {self.path}")
            if self.command == "GET":
                return self._send(200, pod)
            if self.command == "PATCH":
                if not self._checked("UpdatePodRequest", body):
                    return None
                for key, value in (body or {}).items():
                    if key == "globalNetworking":
                        pod[key] = {"enabled": bool(value)}
                    else:
                        pod[key] = sorted(value) if key == "ports" else value
                return self._send(200, pod)
            if self.command == "DELETE":
                del fake.pods[parts[2]]
                return self._send(204)
            return self._problem(405, "Method Not Allowed", self.command)

        def _create(self, body: Any) -> None:
            if not self._checked("CreatePodRequest", body):
                return None
            gpu = (body.get("gpu") or {}).get("id")
            if gpu not in GPU_PRICES:
                return self._problem(400, "Bad Request", f"unknown GPU type {gpu!r}", [f"gpu.id: {gpu!r} is not a GPU type"])
            pod = fake.new_pod(body)
            fake.pods[pod["id"]] = pod
            return self._send(201, pod)

        def _action(self, pod: dict[str, Any], body: Any) -> None:
            if not self._checked("PodActionRequest", body):
                return None
            verb = body["action"]
            if verb not in pod["actions"]:
                return self._problem(409, "Conflict", f"cannot {verb} a pod in status {pod['status']}")
            if verb == "stop":
                pod.update(status="EXITED", actions=["start", "terminate"], cost=0.0)
            elif verb == "start":
                pod.update(status="RUNNING", actions=["stop", "restart", "terminate"])
            return self._send(200, pod)

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
