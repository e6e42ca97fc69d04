"""The provision role applies and destroys pods from the collection as Galaxy installs it, with no checkout.

The collection is built and installed as a Galaxy user gets it (tests/installed_collection.py), and the role
runs from a directory outside the checkout with no ansible.cfg, no inventory and ANSIBLE_COLLECTIONS_PATH naming
the install only. It is given what a RunPod user gives it, nothing of gpuops: a RunPod REST API v2 endpoint
(provision_runpod_base_url), RUNPOD_API_KEY, and `terraform` on PATH. With no cloud named it targets RunPod, keeps
its state in ~/.gpuops and applies the Terraform module it ships.

The endpoint is gpuops' local cloud (memory backend: pods without containers, no Docker needed), started here by
the test, as a stand-in for RunPod, with its stand-in runpod/runpod Terraform provider (through a Terraform CLI
config, provision_terraform_cli_config). Neither comes from the collection: the role starts nothing.
"""

from __future__ import annotations

import re

import httpx
import pytest
import yaml

from tests.installed_collection import Installed, install
from tests.integration.helpers import VENV_BIN, free_port, run, wait_for

pytestmark = [pytest.mark.integration]

PREFIX = "gpuopsgalaxy"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """The stand-in for RunPod: the local cloud on a free port with a state directory of its own."""
    state = tmp_path_factory.mktemp("cloud")
    port = free_port()
    python = str(VENV_BIN / "python")
    run([python, "-m", "localcloud", "start", "--backend", "memory", "--state-dir", str(state), "--port", str(port)])
    try:
        run([python, "-m", "localcloud.tfprovider.install", "--dir", str(state / "providers"), "--python", python,
             "--cli-config", str(state / "terraform.rc")])
        yield {"url": f"http://127.0.0.1:{port}/v2", "key": (state / "api_key").read_text().strip(),
               "cli_config": str(state / "terraform.rc")}
    finally:
        run([python, "-m", "localcloud", "stop", "--purge", "--state-dir", str(state), "--port", str(port)],
            check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    return install(tmp_path_factory.mktemp("galaxy"))


def _pods(cloud) -> dict[str, dict]:
    answer = httpx.get(f"{cloud['url']}/pods", headers={"Authorization": f"Bearer {cloud['key']}"}, timeout=30)
    answer.raise_for_status()
    return {pod["id"]: pod for pod in answer.json()["pods"]
            if pod["name"].startswith(PREFIX) and pod["status"] != "TERMINATED"}


def _files(root) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in root.rglob("*")}


def _provision(installed: Installed, cloud, state: str):
    play = [{"name": "Provision", "hosts": "localhost", "gather_facts": False, "roles": [{
        "role": "gpuops.platform.provision",
        "vars": {"provision_state": state, "provision_name_prefix": PREFIX, "provision_pod_count": 1,
                 "provision_runpod_base_url": cloud["url"],
                 "provision_terraform_cli_config": cloud["cli_config"]}}]}]
    (installed.work / "provision.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    result = installed.playbook("provision.yml", RUNPOD_API_KEY=cloud["key"])
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result


def test_provision_applies_and_destroys_from_the_installed_collection(installed, cloud):
    collection_before = _files(installed.path)
    state_file = installed.home / ".gpuops" / "runpod" / "terraform" / "terraform.tfstate"

    result = _provision(installed, cloud, "present")
    assert "gpuops.platform.provision : Apply terraform/runpod (present)" in result.stdout
    assert state_file.is_file(), "the state is not in the default state directory ~/.gpuops/runpod"
    (pod,) = wait_for("the pod to run", lambda: [p for p in _pods(cloud).values() if p["status"] == "RUNNING"] or None,
                      timeout=120)
    assert pod["name"] == f"{PREFIX}-0"
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=[1-9]", result.stdout)

    # A second run changes nothing.
    again = _provision(installed, cloud, "present")
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s", again.stdout), again.stdout

    result = _provision(installed, cloud, "absent")
    assert f"No pod of deployment {PREFIX} is left" in re.sub(r"\s+", " ", result.stdout), result.stdout
    assert _pods(cloud) == {}
    # Nothing was written into the installed collection (a Galaxy install may be read-only).
    assert _files(installed.path) == collection_before
