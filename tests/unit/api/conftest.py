"""Fixtures of the gpuops API unit tests: the app wired to fake upstreams that replay recorded replies."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "app" / "api"))

from gpuops_api.app import create_app
from gpuops_api.config import Settings, load_settings
from gpuops_api.services import Transports

from .fakes import FIXTURES, SLURM_V38, FakeCloud, FakePrometheus, FakeSlurm, FakeSsh, fixed_clock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx vs httpx2
    from fastapi.testclient import TestClient


def write_config(directory: Path, **overrides: Any) -> Path:
    """Secret files and a configuration file in `directory`, in the shape the deploy role writes."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "api_token").write_text(secrets.token_urlsafe(32) + "\n")
    (directory / "slurm_jwt_hs256.key").write_bytes(secrets.token_bytes(64))
    (directory / "cloud_api_key").write_text("test-cloud-key\n")
    (directory / "inventory").mkdir(exist_ok=True)
    (directory / "job-output" / "tokens").mkdir(parents=True, exist_ok=True)
    # The pods file the app role renders from the recorded deployment's inventory (record_pods_file.py).
    shutil.copy(FIXTURES / "inventory" / "pods.json", directory / "inventory" / "pods.json")
    config = {
        "listen_host": "127.0.0.1",
        "listen_port": 8081,
        "token_file": str(directory / "api_token"),
        "cors_origins": ["http://127.0.0.1:8080", "http://localhost:8080"],
        # Starlette's TestClient sends "Host: testserver"; the API accepts 127.0.0.1 and localhost by itself.
        "trusted_hosts": ["testserver"],
        "cloud": "local",
        "prometheus_url": "http://127.0.0.1:9090",
        "grafana_url": None,
        "slurmrestd_url": "http://127.0.0.1:19401",
        "slurm_api_version": None,  # as the app role deploys it: read from slurmrestd
        "slurm_user": "root",
        "slurm_jwt_key_file": str(directory / "slurm_jwt_hs256.key"),
        "cloud_api_url": "http://127.0.0.1:8765/v2",
        "cloud_api_key_file": str(directory / "cloud_api_key"),
        "pods_file": str(directory / "inventory" / "pods.json"),
        "ssh_private_key_file": str(directory / "id_ed25519"),
        "ssh_known_hosts_file": str(directory / "known_hosts"),
        "ssh_user": "root",
        "job_output_dir": "/var/lib/gpuops/jobs/api",
        "job_output_store": str(directory / "job-output"),
        "upstream_timeout_seconds": 5,
        **overrides,
    }
    path = directory / "api.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_pods_file(settings: Settings) -> dict[str, Any]:
    return json.loads(settings.pods_file.read_text())


def replace_pods_file(settings: Settings, data: dict[str, Any]) -> None:
    """Write the pods file as the role's template module does: a new file renamed over the old one."""
    tmp = settings.pods_file.with_name(".pods.json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, settings.pods_file)


@dataclass
class Env:
    """The app under test and its fake upstreams."""

    settings: Settings
    token: str
    slurm: FakeSlurm
    cloud: FakeCloud
    prometheus: FakePrometheus
    ssh: FakeSsh
    clock: Callable[[], float]

    def app(self, settings: Settings | None = None, grafana: httpx.AsyncBaseTransport | None = None) -> Any:
        transports = Transports(prometheus=self.prometheus.transport(), slurmrestd=self.slurm.transport(),
                                cloud=self.cloud.transport(), grafana=grafana or _refused())
        return create_app(settings or self.settings, transports=transports, ssh=self.ssh, clock=self.clock)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _refused() -> httpx.MockTransport:
    """A Grafana that is not there (unit tests never touch the network)."""
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)
    return httpx.MockTransport(refuse)


def make_env(directory: Path, slurm_version: str = SLURM_V38, **overrides: Any) -> Env:
    """The app's configuration in `directory`, with fake upstreams (slurmrestd recorded in `slurm_version`)."""
    settings = load_settings(write_config(directory, **overrides))
    return Env(
        settings=settings,
        token=settings.token_file.read_text().strip(),
        slurm=FakeSlurm(settings.slurm_jwt_key_file.read_bytes(), fixed_clock, version=slurm_version),
        cloud=FakeCloud("test-cloud-key"),
        prometheus=FakePrometheus(),
        ssh=FakeSsh(),
        clock=fixed_clock,
    )


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture
def client(env: Env) -> Iterator[TestClient]:
    """A client that sends the API token."""
    with TestClient(env.app(), raise_server_exceptions=False) as test_client:
        test_client.headers.update(env.auth)
        yield test_client


@pytest.fixture
def anonymous(env: Env) -> Iterator[TestClient]:
    with TestClient(env.app(), raise_server_exceptions=False) as test_client:
        yield test_client
