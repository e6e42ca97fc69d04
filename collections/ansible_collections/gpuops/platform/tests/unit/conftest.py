# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared fixtures of the unit tests, and collection loading for plain pytest.

``ansible-test units`` installs Ansible's collection finder itself. Under plain
pytest (``make test-unit``, or ``python -m pytest collections/ansible_collections/gpuops/platform/tests/unit``
from the repository root, on any ansible-core the collection claims) this file
asks Ansible to install it, the way ``ansible-playbook`` does: with
``ansible.plugins.loader.init_plugin_loader``, the ``collections/`` directory
that holds this collection first. Nothing of pytest or Ansible is patched.

pytest imports each test module by its file name (its default ``prepend``
import mode), so a test file's name must be unique across the unit tests;
pytest refuses a second one ("import file mismatch"). Test modules import
what they share (the module harness, the fakes) by their full
``ansible_collections.gpuops.platform.tests...`` names, through the finder.
"""

from __future__ import annotations

import json
import pathlib
import socket
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.utils.collection_loader import AnsibleCollectionConfig


# .../collections/ansible_collections/gpuops/platform/tests/unit/conftest.py
_COLLECTIONS_DIR = pathlib.Path(__file__).resolve().parents[5]

if AnsibleCollectionConfig.collection_finder is None:
    # Not under ansible-test units, which installs the finder itself (and whose
    # module tests cannot import controller code such as ansible.plugins).
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([str(_COLLECTIONS_DIR)])


# -- a fake terraform executable --------------------------------------------------

_FAKE_TERRAFORM = r'''#!{python}
"""Stand-in for the terraform CLI: logs its call, then answers as FAKE_TF_MODE says."""
import json
import os
import sys

log = os.environ.get("FAKE_TF_LOG")
if log:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({{
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "env": {{k: v for k, v in os.environ.items() if k.startswith(("TF_", "FAKE_"))}},
        }}) + "\n")
mode = os.environ.get("FAKE_TF_MODE", "output")
if mode == "output":
    with open(os.environ["FAKE_TF_OUTPUT"], encoding="utf-8") as handle:
        sys.stdout.write(handle.read())
    sys.stderr.write(os.environ.get("FAKE_TF_STDERR", ""))
elif mode == "empty":
    sys.stdout.write("{{}}\n")
elif mode == "garbage":
    sys.stdout.write("secret-value-that-must-not-leak not json\n")
elif mode == "fail":
    sys.stderr.write("Error: Backend initialization required, please run \"terraform init\"\n")
    sys.exit(1)
elif mode == "sleep":
    import time
    time.sleep(30)
'''


class FakeTerraform:
    """A terraform executable in a directory of its own; ``calls()`` reads its log."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.bin_dir = directory / "bin"
        self.bin_dir.mkdir()
        self.path = self.bin_dir / "terraform"
        self.path.write_text(_FAKE_TERRAFORM.format(python=sys.executable), encoding="utf-8")
        self.path.chmod(0o755)
        self.log = directory / "terraform-calls.jsonl"

    def env(self, output: pathlib.Path | None = None, mode: str = "output", stderr: str = "") -> dict:
        env = {"FAKE_TF_LOG": str(self.log), "FAKE_TF_MODE": mode, "FAKE_TF_STDERR": stderr}
        if output is not None:
            env["FAKE_TF_OUTPUT"] = str(output)
        return env

    def calls(self) -> list:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def fake_terraform(tmp_path):
    return FakeTerraform(tmp_path)


# -- a stand-in RunPod API on a real HTTP server -------------------------------------


def _problem(status: int, title: str, detail: str) -> dict:
    return {"title": title, "status": status, "detail": detail}


class FakeRunPod:
    """RunPod REST v2 paths under /v2 on 127.0.0.1, answering as RunPod's OpenAPI says.

    ``pods[id]`` is a list of (status, body) answers to GET /v2/pods/{id}: each
    request takes the next one, the last one repeats; GET /v2/pods answers
    ``{"pods": [...]}`` with the current answer of each. ``script(path, *answers)``
    makes the next requests to PATH (any method; a path with its query string
    matches only that query) answer (status, body, headers) in turn before the
    normal handling, for 429/503 sequences. ``catalog`` holds the bodies of
    GET /v2/catalog/gpus (with and without availability) and /v2/catalog/datacenters.
    Errors are RFC 9457 problem documents. ``requests`` records (method, path with
    query, authorization header) of every request; ``times`` when each came.
    """

    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.pods: dict = {}
        self.requests: list = []
        self.times: list = []
        self.bodies: list = []
        self.scripts: dict = {}
        self.catalog: dict = {}
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return "http://127.0.0.1:%d/v2" % self.server.server_address[1]

    def set_pod(self, pod_id: str, *answers) -> None:
        """Each answer is a Pod dict (HTTP 200) or a (status, body) tuple."""
        self.pods[pod_id] = [a if isinstance(a, tuple) else (200, a) for a in answers]

    def script(self, path: str, *answers) -> None:
        """The next requests to PATH answer these (status, body[, headers]) in turn."""
        self.scripts[path] = [a if len(a) == 3 else (a[0], a[1], {}) for a in answers]

    def gets(self, pod_id: str) -> int:
        return sum(1 for method, path, _auth in self.requests if method == "GET" and path == "/v2/pods/" + pod_id)

    def _next(self, pod_id: str):
        with self.lock:
            answers = self.pods.get(pod_id)
            if not answers:
                return 404, _problem(404, "Not Found", "pod %s not found" % pod_id)
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def _scripted(self, full_path: str):
        with self.lock:
            for key in (full_path, full_path.split("?", 1)[0]):
                answers = self.scripts.get(key)
                if answers:
                    return answers.pop(0)
        return None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def _reply(self, status, body=None, headers=None):
                data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                if data and not isinstance(body, bytes):
                    self.send_header("Content-Type", "application/problem+json" if status >= 400 else "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                auth = self.headers.get("Authorization", "")
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((method, self.path, auth))
                fake.times.append(time.monotonic())
                fake.bodies.append(body)
                if fake.delay:
                    threading.Event().wait(fake.delay)
                if auth != "Bearer %s" % fake.api_key:
                    # echo the header back, so tests can check the client redacts it
                    return self._reply(401, _problem(401, "Unauthorized", "invalid api key %s" % auth))
                scripted = fake._scripted(self.path)
                if scripted is not None:
                    return self._reply(*scripted)
                path, _sep, query = self.path.partition("?")
                if path == "/v2/pods" and method == "GET":
                    return self._reply(200, {"pods": [fake._next(pid)[1] for pid in sorted(fake.pods)]})
                if path == "/v2/pods" and method == "POST":
                    spec = json.loads(body)
                    pod = dict(spec, id="created1", status="PROVISIONING", actions=["stop", "terminate"])
                    return self._reply(201, pod)
                if path.startswith("/v2/pods/") and path.endswith("/action") and method == "POST":
                    pod_id = path[len("/v2/pods/"):-len("/action")]
                    status, pod = fake._next(pod_id)
                    if status != 200:
                        return self._reply(status, pod)
                    action = json.loads(body).get("action")
                    if action not in pod.get("actions", []):
                        return self._reply(409, _problem(409, "Conflict", "action %r is not valid for a pod in status %s"
                                                         % (action, pod.get("status"))))
                    if action == "terminate":
                        del fake.pods[pod_id]
                        return self._reply(204)
                    return self._reply(200, dict(pod, status={"stop": "EXITED"}.get(action, "RUNNING")))
                if path.startswith("/v2/pods/"):
                    pod_id = path[len("/v2/pods/"):]
                    if method == "GET":
                        return self._reply(*fake._next(pod_id))
                    if method == "DELETE":
                        if pod_id not in fake.pods:
                            return self._reply(404, _problem(404, "Not Found", "pod %s not found" % pod_id))
                        del fake.pods[pod_id]
                        return self._reply(204)
                if method == "GET" and path == "/v2/catalog/gpus":
                    key = "gpus_availability" if "include=AVAILABILITY" in query else "gpus"
                    if key == "gpus" and ("count=" in query or "cloud=" in query):
                        return self._reply(400, _problem(400, "Bad Request", "count and cloud are valid only with include=AVAILABILITY"))
                    if key == "gpus_availability" and "product=" not in query:
                        return self._reply(400, _problem(400, "Bad Request", "include=AVAILABILITY requires product"))
                    return self._reply(200, fake.catalog.get(key, {"gpus": []}))
                if method == "GET" and path == "/v2/catalog/datacenters":
                    key = "datacenters_gpu_availability" if "include=GPU_AVAILABILITY" in query else "datacenters"
                    return self._reply(200, fake.catalog.get(key, {"dataCenters": []}))
                if path == "/v2/teapot":
                    return self._reply(418, b"I'm a teapot")
                if path == "/v2/notjson":
                    return self._reply(200, b"<html>hello</html>")
                return self._reply(404, _problem(404, "Not Found", "no such path %s" % path))

            def do_GET(self):
                self._handle("GET")

            def do_DELETE(self):
                self._handle("DELETE")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        return Handler

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runpod_api():
    server = FakeRunPod().start()
    for key in ("gpus", "gpus_availability", "datacenters", "datacenters_gpu_availability"):
        server.catalog[key] = _load_api_fixture("catalog_%s.json" % key)["body"]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port_url():
    """A base URL on which nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return "http://127.0.0.1:%d/v2" % port


# -- fixture files ----------------------------------------------------------------------

FIXTURES = pathlib.Path(__file__).resolve().parent / "plugins" / "inventory" / "fixtures"
API_FIXTURES = pathlib.Path(__file__).resolve().parent / "plugins" / "module_utils" / "fixtures" / "runpod"


def _load_fixture(name: str):
    with open(FIXTURES / name, encoding="utf-8") as handle:
        return json.load(handle)


def _load_api_fixture(name: str):
    """A RunPod v2 answer from the spec's examples: {"status", "body"[, "headers"]}."""
    with open(API_FIXTURES / name, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def load_api_fixture():
    return _load_api_fixture


@pytest.fixture
def fixtures_dir():
    return FIXTURES


@pytest.fixture
def load_fixture():
    """``load_fixture("pod_running.json")``: a fresh copy of a JSON fixture."""
    return _load_fixture


@pytest.fixture(autouse=True)
def _no_runpod_env(monkeypatch):
    """The developer's own RunPod settings must not leak into the tests."""
    for name in ("RUNPOD_API_KEY", "RUNPOD_BASE_URL", "GPUOPS_TERRAFORM", "TF_DATA_DIR", "TF_CLI_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
