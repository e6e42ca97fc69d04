"""End to end: provision 2 local-cloud pods with terraform/runpod, reach them
through the inventory plugin, apply again without change, tear down.

Everything is real: the local cloud with the Docker backend, Terraform with
the stand-in provider, the inventory plugin, SSH into the pod containers.
The test uses its own state directory, API port and inventory copy, so it
never touches a developer's own deployment in .gpuops/.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.helpers import (
    REPO,
    VENV_BIN,
    Deployment,
    free_port,
    docker_available,
    recap as _recap,
    run,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopsit"


def _plain(value):
    """ansible-inventory --list marks untrusted (remote) strings as {"__ansible_unsafe": ...}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("deploy"), prefix=PREFIX)
    yield dep
    # Never leave pods behind, whatever failed.
    if dep.api_key_file.exists():
        dep.playbook("teardown.yml", check=False)
    dep.stop()


def test_check_mode_on_a_fresh_machine_starts_and_creates_nothing(deployment):
    result = deployment.playbook("provision.yml", "--check")
    assert "the local cloud is not running" in result.stdout
    assert not deployment.api_key_file.exists()
    assert not (deployment.state_dir / "local" / "terraform" / "terraform.tfstate").exists()


def test_pod_count_zero_is_refused_before_anything_runs(deployment):
    result = deployment.playbook("provision.yml", "-e", "provision_pod_count=0", check=False)
    assert result.returncode != 0
    assert "provision_pod_count is 0" in result.stdout
    assert not (deployment.state_dir / "local" / "terraform" / "terraform.tfstate").exists()


def test_inventory_without_state_says_to_provision_first(deployment):
    result = deployment.inventory_list()
    assert "no Terraform state at" in result.stderr
    assert "run ansible-playbook playbooks/provision.yml first" in result.stderr
    # One clear warning, not a cascade of parser failures.
    assert result.stderr.count("[WARNING]") == 1, result.stderr
    inventory = json.loads(result.stdout)
    assert not inventory.get("gpu_pods", {}).get("hosts")


def test_unknown_gpu_type_is_refused_before_anything_is_created(deployment):
    result = deployment.playbook("provision.yml", "-e", '{"provision_gpu_type_id": "NVIDIA Bogus 9000"}', check=False)
    assert result.returncode != 0
    # Refused by the catalog preflight (GET /v2/catalog/gpus), before Terraform runs.
    assert "'NVIDIA Bogus 9000' is not a RunPod GPU type id" in result.stdout
    assert "NVIDIA GeForce RTX 4090" in result.stdout  # the valid ids are listed
    assert not (deployment.state_dir / "local" / "terraform" / "terraform.tfstate").exists()


def test_spot_is_refused_with_a_clear_message(deployment):
    result = deployment.playbook("provision.yml", "-e", '{"provision_spot": true}', check=False)
    assert result.returncode != 0
    assert "have no spot (interruptible) pods" in result.stdout
    assert not (deployment.state_dir / "local" / "terraform" / "terraform.tfstate").exists()


def test_global_networking_where_no_chosen_data_centre_offers_it_is_refused(deployment):
    result = deployment.playbook("provision.yml", "-e", json.dumps(
        {"provision_global_networking": True, "provision_data_center_ids": ["EU-SE-1", "CA-MTL-1"]}), check=False)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    # Refused by the catalog preflight (GET /v2/catalog/datacenters' globalNetwork), before Terraform runs.
    assert ("provision_global_networking is true, but none of the data centres EU-SE-1, CA-MTL-1 offers global "
            "networking. Data centres that do: US-TX-3, US-KS-2, US-CA-2, EU-RO-1, US-GA-2.") in out, out[-3000:]
    assert "Nothing was created" in out
    assert "TASK [gpuops.platform.provision : Check that a data centre offers global networking]" in result.stdout
    assert not (deployment.state_dir / "local" / "terraform" / "terraform.tfstate").exists()


def _fault(deployment, method: str, path: str, body: dict | None = None) -> None:
    """Call the local cloud's fault injection (not RunPod API; same key)."""
    answer = deployment.api().request(method, f"http://127.0.0.1:{deployment.port}/_localcloud/{path}", json=body)
    assert answer.status_code < 300, answer.text


def test_out_of_stock_gpu_type_is_refused_naming_what_is_in_stock(deployment):
    _fault(deployment, "PUT", "stock", {"gpus": {"NVIDIA GeForce RTX 4090": "NONE"}})
    try:
        result = deployment.playbook("provision.yml", check=False)
    finally:
        _fault(deployment, "DELETE", "faults")
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "NVIDIA GeForce RTX 4090 x1 is out of stock" in out, result.stdout[-3000:]
    assert "In stock now: " in out and "NVIDIA RTX A6000" in out
    assert deployment.api().get("/pods").json() == {"pods": []}


def test_capacity_error_during_apply_leaves_nothing_billing(deployment):
    # The catalog says in stock, but RunPod has no machine for one of the two creates.
    _fault(deployment, "POST", "faults/capacity", {"count": 1})
    try:
        result = deployment.playbook("provision.yml", check=False)
    finally:
        _fault(deployment, "DELETE", "faults")
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "There are no longer any instances available" in out, result.stdout[-4000:]
    assert "Destroyed the 1 pod(s) this run had created" in out, result.stdout[-4000:]
    assert "GPU types in stock now on the SECURE cloud: " in out
    # Nothing bills: the pod that was created is gone, and no container is left.
    assert deployment.api().get("/pods").json() == {"pods": []}
    records = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=io.gpuops.localcloud=1",
         "--format", '{{ .Label "io.gpuops.localcloud.record" }}'],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert [r for r in records if json.loads(r)["name"].startswith(f"{PREFIX}-")] == []
    # The state names no pod that is gone (else the inventory would refuse it and no playbook could start).
    state = json.loads((deployment.state_dir / "local" / "terraform" / "terraform.tfstate").read_text())
    assert state["outputs"].get("pods", {}).get("value", {}) == {}, state["outputs"]
    assert deployment.inventory_list(check=False).returncode == 0


def test_provision_creates_two_reachable_pods(deployment):
    result = deployment.playbook("provision.yml")
    recap = _recap(result.stdout)
    assert recap["localhost"]["failed"] == 0
    assert {f"{PREFIX}-0", f"{PREFIX}-1"} <= set(recap)

    pods = deployment.api().get("/pods").json()["pods"]
    assert sorted(p["name"] for p in pods) == [f"{PREFIX}-0", f"{PREFIX}-1"]
    assert all(p["status"] == "RUNNING" for p in pods)
    # Isolated by default, as on RunPod without global networking: each pod is a Slurm node of its own.
    assert not any(p["globalNetworking"]["enabled"] for p in pods)
    deployment.seen_ids.update(p["id"] for p in pods)
    assert len(deployment.containers()) == 2


def test_inventory_groups(deployment):
    inventory = json.loads(deployment.inventory_list().stdout)
    assert sorted(inventory["gpu_pods"]["hosts"]) == [f"{PREFIX}-0", f"{PREFIX}-1"]
    # Slurm's controller is the service plane's container, never a pod.
    assert inventory["slurm_controller"]["hosts"] == ["slurmctld"]
    # Every pod is a Slurm node: the inventory's configuration says so (groups:), not the plugin.
    assert sorted(inventory["slurm_compute"]["hosts"]) == [f"{PREFIX}-0", f"{PREFIX}-1"]
    gpu_groups = [g for g in inventory if g.startswith("gpu_") and g != "gpu_pods"]
    assert gpu_groups, "no keyed group by GPU type"
    hostvars = inventory["_meta"]["hostvars"][f"{PREFIX}-1"]
    # Remote values reach Ansible marked unsafe (never templated).
    assert hostvars["runpod_pod_id"] == {"__ansible_unsafe": _plain(hostvars["runpod_pod_id"])}
    hostvars = _plain(hostvars)
    assert hostvars["ansible_host"] == "127.0.0.1"
    assert isinstance(hostvars["ansible_port"], int)
    assert "runpod_role" not in hostvars
    # The pod's slot, from Terraform's pod map: the number in its name.
    assert hostvars["runpod_pod_index"] == 1
    assert hostvars["runpod_pod_id"] in deployment.seen_ids


def test_ping_over_ssh(deployment):
    result = deployment.ansible("gpu_pods", "-m", "ansible.builtin.ping")
    assert result.stdout.count("SUCCESS") == 2
    # The pod is a RunPod-like container: its id in RUNPOD_POD_ID.
    result = deployment.ansible(f"{PREFIX}-0", "-m", "ansible.builtin.command", "-a", "printenv RUNPOD_POD_ID")
    assert any(pod_id in result.stdout for pod_id in deployment.seen_ids)


def test_provision_fails_when_the_inventory_lacks_a_pod_that_bills(deployment, tmp_path):
    """A pod Terraform reports but the rebuilt inventory has no host for must fail the run, not pass unconfigured.

    The inventory reads a stale copy of the state that lists only the first pod (as an inventory whose state_file
    is not the one provision writes): the provision role's own apply reports both pods, the inventory builds one.
    """
    state = deployment.state_dir / "local" / "terraform" / "terraform.tfstate"
    stale = json.loads(state.read_text())
    pods = stale["outputs"]["pods"]
    assert sorted(pods["value"]) == [f"{PREFIX}-0", f"{PREFIX}-1"]
    del pods["value"][f"{PREFIX}-1"]
    del pods["type"][1][f"{PREFIX}-1"]  # an object type: one attribute per pod
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "terraform.tfstate").write_text(json.dumps(stale))
    inventory = tmp_path / "inventory"
    shutil.copytree(deployment.inventory, inventory)
    config = inventory / "runpod.yml"
    assert str(state) in config.read_text()
    config.write_text(config.read_text().replace(str(state), str(tmp_path / "stale" / "terraform.tfstate")))

    result = run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/provision.yml",
                  *deployment.extra], check=False)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0, out[-4000:]
    assert "TASK [Fail when the inventory lacks a pod the deployment has]" in result.stdout
    assert (f"Terraform reports 2 pod(s) for deployment {PREFIX} ({PREFIX}-0, {PREFIX}-1), but the inventory has "
            f"no host for {PREFIX}-1, so nothing could configure it while it bills.") in out, out[-4000:]
    assert "ansible-inventory --list -vvv" in out and "ansible-playbook teardown.yml" in out
    # It stopped on the control host, before any play against the pods, and changed nothing.
    recap = _recap(result.stdout)
    assert set(recap) == {"localhost"}, recap
    assert recap["localhost"]["failed"] == 1 and recap["localhost"]["changed"] == 0, recap
    assert "PLAY [Wait for the pods" not in result.stdout
    # The pods are still there (and billing), as the message says.
    assert sorted((name, pod["status"]) for name, pod in deployment.pods().items()) == [
        (f"{PREFIX}-0", "RUNNING"), (f"{PREFIX}-1", "RUNNING")]


def test_second_provision_changes_nothing(deployment):
    result = deployment.playbook("provision.yml")
    recap = _recap(result.stdout)
    assert recap, result.stdout
    assert all(counts["changed"] == 0 for counts in recap.values()), recap


def test_check_mode_reports_no_change(deployment):
    result = deployment.playbook("provision.yml", "--check", "--diff")
    recap = _recap(result.stdout)
    assert all(counts["changed"] == 0 for counts in recap.values()), recap


def test_check_mode_plans_with_this_runs_values(deployment):
    """Check mode plans with the values given now (not those of an earlier run), and creates nothing."""
    result = deployment.playbook("provision.yml", "--check", "-e", "provision_pod_count=3")
    assert _recap(result.stdout)["localhost"]["changed"] >= 1, result.stdout[-3000:]
    assert len(deployment.api().get("/pods").json()["pods"]) == 2


def test_terraform_gets_no_variable_on_its_command_line_and_leaves_no_plan(deployment, tmp_path):
    """Variables (provision_env may hold secrets) go through a 0600 file, never `-var` (visible in `ps`);
    plans go to a private directory of the run, removed at its end."""
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "terraform"
    real = shutil.which("terraform") or str(REPO / ".venv" / "bin" / "terraform")
    # Logs each command line, and the mode of each -var-file while Terraform runs (it is gone afterwards).
    wrapper.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\nprev=\nfor a in "$@"; do\n'
                       '  [ "$prev" = "-var-file" ] && stat -c "mode %%a %%n" "$a" >> %s\n  prev=$a\ndone\n'
                       'exec %s "$@"\n' % (log, log, real))
    wrapper.chmod(0o755)
    plans_before = set(glob.glob("/tmp/*.tfplan") + glob.glob("/tmp/*/*.tfplan"))
    dirs_before = set(glob.glob("/tmp/gpuops-tf-*"))
    result = deployment.playbook("provision.yml", "-e", f"provision_terraform_binary={wrapper}")
    assert all(counts["changed"] == 0 for counts in _recap(result.stdout).values())
    calls = log.read_text().splitlines()
    assert any(call.startswith("plan ") for call in calls), calls
    calls_only = [call for call in calls if not call.startswith("mode ")]
    assert not [call for call in calls_only if "-var " in call or "name_prefix=" in call or "ssh-ed25519" in call], calls
    files = [line.split()[2] for line in calls if line.startswith("mode ")]
    assert files and all(line.startswith("mode 600 ") for line in calls if line.startswith("mode ")), calls
    assert all(re.fullmatch(r".*/gpuops-tf-[^/]+/gpuops\.tfvars\.json", f) for f in files), files
    assert not any(Path(f).exists() for f in files)
    # No plan left anywhere in the temporary directory, nor the run's private directory.
    assert set(glob.glob("/tmp/*.tfplan") + glob.glob("/tmp/*/*.tfplan")) <= plans_before
    assert not [d for d in glob.glob("/tmp/gpuops-tf-*") if d not in dirs_before]


def test_bad_api_key_is_refused_with_a_clear_message(deployment):
    good = deployment.api_key_file.read_text()
    try:
        deployment.api_key_file.write_text("not-the-key")
        result = deployment.playbook("provision.yml", check=False)
        assert result.returncode != 0
        # Refused before Terraform runs, by the catalog check, with what to do.
        out = " ".join((result.stdout + result.stderr).split())
        assert "rejected the API key (" in out and "answered HTTP 401" in out, out[-3000:]
        assert "not-the-key" not in out
    finally:
        deployment.api_key_file.write_text(good)


def test_runpod_without_api_key_stops_before_terraform(deployment, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    result = run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(REPO / "inventories/runpod"), "playbooks/provision.yml",
         "-e", f"gpuops_state_dir={tmp_path}"],
        check=False, env=env,
    )
    assert result.returncode != 0
    assert "RUNPOD_API_KEY is not set" in result.stdout
    assert not (tmp_path / "runpod" / "terraform").exists()


def test_site_on_runpod_with_unreachable_api_stops_before_terraform(deployment, tmp_path):
    env = {**os.environ, "RUNPOD_API_KEY": "rpa_gpuops_test_not_a_key"}
    closed = free_port()
    # RunPod's own inventory: -i chooses the cloud.
    result = run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(REPO / "inventories/runpod"), "site.yml",
         "-e", f"gpuops_state_dir={tmp_path}", "-e", f"provision_runpod_base_url=http://127.0.0.1:{closed}/v2"],
        check=False, env=env,
    )
    assert result.returncode != 0
    assert f"The RunPod API at http://127.0.0.1:{closed}/v2 is unreachable" in result.stdout
    assert "rpa_gpuops_test_not_a_key" not in result.stdout + result.stderr
    assert not (tmp_path / "runpod" / "terraform").exists()


def test_the_old_extra_var_is_refused_before_anything_runs(deployment, tmp_path):
    """-e gpuops_cloud=runpod no longer switches the inventory: with the local inventory it is refused, naming -i."""
    result = deployment.playbook(str(REPO / "site.yml"), "-e", "gpuops_cloud=runpod", check=False)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "gpuops_cloud is 'runpod', but this inventory is the one of the cloud 'local'" in out, out[-3000:]
    assert "ansible-playbook -i inventories/runpod" in out and "Nothing was changed" in out
    assert "PLAY [Provision the pods]" not in result.stdout and "PLAY [Start the local" not in result.stdout


def test_runpod_with_invalid_gpu_type_stops_before_terraform(deployment, tmp_path):
    # RunPod's inventory against a real v2 API: the local cloud's, with its key as RUNPOD_API_KEY.
    env = {**os.environ, "RUNPOD_API_KEY": deployment.api_key_file.read_text().strip()}
    result = run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(REPO / "inventories/runpod"), "playbooks/provision.yml",
         "-e", f"gpuops_state_dir={tmp_path}", "-e", f"provision_runpod_base_url=http://127.0.0.1:{deployment.port}/v2",
         "-e", '{"provision_gpu_type_id": "NVIDIA GeForce RTX 9999"}'],
        check=False, env=env,
    )
    assert result.returncode != 0
    assert "'NVIDIA GeForce RTX 9999' is not a RunPod GPU type id" in result.stdout
    assert "NVIDIA GeForce RTX 4090" in result.stdout  # the valid ids are listed
    assert env["RUNPOD_API_KEY"] not in result.stdout + result.stderr
    assert not (tmp_path / "runpod" / "terraform" / "terraform.tfstate").exists()


def test_inventory_with_cloud_down_names_the_api(deployment):
    run([str(VENV_BIN / "python"), "-m", "localcloud", "stop",
         "--state-dir", str(deployment.state_dir / "localcloud"), "--port", str(deployment.port)])
    result = deployment.inventory_list(check=False)
    assert f"127.0.0.1:{deployment.port}" in result.stdout + result.stderr
    assert "localcloud start" in result.stdout + result.stderr


def test_teardown_leaves_no_pod_and_no_container(deployment):
    # Teardown restarts the local cloud itself (it was stopped above).
    result = deployment.playbook("teardown.yml")
    assert "No pod of deployment" in result.stdout
    assert "destroyed by id" in result.stdout
    assert deployment.api().get("/pods").json()["pods"] == []
    assert deployment.containers() == []
    again = deployment.playbook("teardown.yml")
    assert all(counts["changed"] == 0 for counts in _recap(again.stdout).values())


# -- inventory errors are fatal (issue 10): fast, no pod is created ------------------------------------

RECORDED_OUTPUT = (REPO / "collections/ansible_collections/gpuops/platform/tests/unit/plugins/inventory/fixtures"
                   / "terraform_output.json")


def _state_with_pods(dep: Deployment) -> dict:
    """A Terraform state (format 4) whose outputs are a real recording of terraform/runpod's; return its pods.

    `terraform output -json` reads it as it reads the state of an apply; it holds no resource, so nothing is
    ever destroyed for real.
    """
    recorded = json.loads(RECORDED_OUTPUT.read_text())
    state = {
        "version": 4, "terraform_version": "1.5.0", "serial": 1, "lineage": "6f1c0a52-1d3e-4b8e-9a57-000000000010",
        "outputs": {name: {"value": out["value"], "type": out["type"], **({"sensitive": True} if out["sensitive"] else {})}
                    for name, out in recorded.items()},
        "resources": [], "check_results": None,
    }
    path = dep.state_dir / "local" / "terraform" / "terraform.tfstate"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return recorded["pods"]["value"]


@pytest.fixture
def stateful(tmp_path):
    """A deployment whose Terraform state lists pods, with no local cloud started (its port is closed)."""
    dep = Deployment(tmp_path / "deploy", prefix="gpuopsinv")
    dep.pods_in_state = _state_with_pods(dep)
    dep.api_key_file.parent.mkdir(parents=True, exist_ok=True)
    dep.api_key_file.write_text("gpuops-test-key-for-an-absent-cloud\n")
    yield dep
    dep.stop()


def _flat(result: subprocess.CompletedProcess) -> str:
    return " ".join((result.stdout + result.stderr).split())


def _only_localhost_ran(result: subprocess.CompletedProcess) -> None:
    recap = _recap(result.stdout)
    assert set(recap) == {"localhost"}, recap
    assert recap["localhost"]["failed"] == 1 and recap["localhost"]["changed"] == 0, recap


def test_inventory_api_unreachable_fails_the_playbooks_that_need_the_pods(stateful):
    url = f"http://127.0.0.1:{stateful.port}/v2"
    for playbook in ("slurm.yml", "./submit_job.yml"):
        result = stateful.playbook(playbook, "-e", "script=examples/hello.sh", check=False)
        out = _flat(result)
        assert result.returncode != 0, out[-3000:]
        assert f"could not get them from the RunPod API at {url} (cloud local," in out, out[-3000:]
        assert f"cannot reach the RunPod API at {url}" in out
        assert "python -m localcloud start" in out and "ansible-playbook teardown.yml" in out
        for name, spec in stateful.pods_in_state.items():
            assert f"{name} ({spec['id']})" in out
        # It failed first, on the control host: nothing ran against a pod, nothing was submitted.
        assert "TASK [Fail when the inventory could not build the deployment's pods]" in result.stdout
        _only_localhost_ran(result)


def test_inventory_api_unreachable_lets_teardown_run(stateful):
    # teardown.yml needs no pod: with the cloud down at its start, it starts the local cloud and destroys by the
    # Terraform state (which here holds no resource), and never stops on runpod_inventory_error.
    result = stateful.playbook("teardown.yml", check=False)
    out = _flat(result)
    assert result.returncode == 0, out[-4000:]
    assert "cannot reach the RunPod API" in out  # the plugin's one warning at the start
    assert "No pod of deployment gpuopsinv is left" in out


def test_inventory_wrong_key_fails_the_playbook(stateful, tmp_path):
    # The local cloud answers (memory backend: no pod is created), but refuses the inventory's key.
    run([str(VENV_BIN / "python"), "-m", "localcloud", "start", "--backend", "memory",
         "--state-dir", str(stateful.state_dir / "localcloud"), "--port", str(stateful.port)])
    wrong = tmp_path / "wrong_key"
    wrong.write_text("rpa_gpuops_wrong_key_must_not_leak\n")
    config = stateful.inventory / "runpod.yml"
    config.write_text(config.read_text().replace(str(stateful.api_key_file), str(wrong)))
    result = stateful.playbook("slurm.yml", check=False)
    out = _flat(result)
    assert result.returncode != 0, out[-3000:]
    assert f"the RunPod API at http://127.0.0.1:{stateful.port}/v2 rejected the API key" in out, out[-3000:]
    assert "answered HTTP 401" in out and "RUNPOD_API_KEY" in out
    assert "rpa_gpuops_wrong_key_must_not_leak" not in result.stdout + result.stderr
    _only_localhost_ran(result)


def test_inventory_with_broken_yaml_fails_every_playbook(stateful):
    config = stateful.inventory / "runpod.yml"
    config.write_text(config.read_text() + "keyed_groups: [unclosed\n")
    for playbook in ("slurm.yml", "teardown.yml"):
        result = stateful.playbook(playbook, check=False)
        out = _flat(result)
        assert result.returncode != 0, out[-3000:]
        assert "Completely failed to parse inventory source %s" % config in out, out[-3000:]
        assert "YAML parsing failed" in out and str(config) in out  # what is wrong, and where
        assert "PLAY [" not in result.stdout  # nothing ran at all


# -- provision's wait stops early when a pod goes to ERROR (roles/provision/tasks/ready.yml) -----------------

READY_TASK = "Wait until the deployment's pods run"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A deployment of its own (own local cloud, port and prefix), torn down whatever happens.

    Shared by the tests below: each leaves it with a failed provision; the first tears it down itself.
    """
    dep = Deployment(tmp_path_factory.mktemp("fresh") / "deploy", prefix="gpuopserr")
    yield dep
    if dep.api_key_file.exists():
        dep.playbook("teardown.yml", check=False)
    dep.stop()


def _provision_streamed(dep: Deployment, *args: str) -> tuple[int, list[tuple[float, str]]]:
    """provision.yml, its output read as it comes: (exit status, [(seconds since the start, line)])."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(dep.inventory), "playbooks/provision.yml", *dep.extra, *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []
    try:
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line))
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, lines


def test_a_pod_stuck_in_provisioning_fails_the_wait_at_its_timeout(fresh):
    fresh.playbook("localcloud.yml")
    # The pod never leaves PROVISIONING (RunPod waiting for capacity): the wait gives up at its timeout.
    _fault(fresh, "POST", "faults/provisioning", {"count": 1})
    timeout = 10
    retries = -(-timeout // 5)  # the role polls every 5 s
    code, lines = _provision_streamed(fresh, "-e", "provision_pod_count=1",
                                      "-e", f"provision_ready_timeout={timeout}")
    output = "".join(line for _, line in lines)
    out = " ".join(output.split())
    (pod,) = fresh.pods().values()
    fresh.seen_ids.add(pod["id"])
    assert code != 0, output[-4000:]
    assert pod["status"] == "PROVISIONING", pod

    assert (f"Not every pod of deployment gpuopserr was RUNNING after {timeout} s: "
            f"gpuopserr-0 ({pod['id']}) is PROVISIONING; 0 pod(s) not found. "
            "A pod stuck in PROVISIONING is waiting for capacity on RunPod; remove the deployment with "
            "ansible-playbook teardown.yml (nothing is left billing), or raise provision_ready_timeout "
            "and run again.") in out, out[-4000:]
    assert "Stopped waiting" not in out  # not taken for a pod that waiting cannot help
    # Bounded: every poll the timeout allows, then no more; the wait took about the timeout, not longer.
    polls = [line for _, line in lines if line.startswith(f"FAILED - RETRYING: [localhost]: {READY_TASK}")]
    assert len(polls) == retries, output[-4000:]
    headers = [(at, line) for at, line in lines if line.startswith("TASK [")]
    (i,) = [n for n, (_, line) in enumerate(headers) if f": {READY_TASK}]" in line]
    waited = headers[i + 1][0] - headers[i][0]
    assert timeout <= waited < timeout + 20, waited
    assert "Fail when a pod does not run in time" in headers[i + 1][1]

    # The stuck pod bills (its container exists): teardown removes it, and nothing is left.
    assert fresh.containers()
    config = fresh.inventory / "runpod.yml"
    original = config.read_text()
    assert "wait_timeout: 120" in original
    try:
        # The inventory would wait its own 120 s for the stuck pod before saying so; teardown needs no pod.
        config.write_text(original.replace("wait_timeout: 120", "wait_timeout: 0"))
        result = fresh.playbook("teardown.yml", check=False)
    finally:
        config.write_text(original)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No pod of deployment gpuopserr is left" in " ".join(result.stdout.split())
    assert fresh.pods() == {}
    assert fresh.containers() == []


def test_a_pod_that_goes_to_error_stops_the_wait_early(fresh):
    fresh.playbook("localcloud.yml")
    # The pod stays PROVISIONING, so that the wait polls it (and retries) before it goes to ERROR.
    _fault(fresh, "POST", "faults/provisioning", {"count": 1})
    timeout = 600
    retries = timeout // 5
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(fresh.inventory), "playbooks/provision.yml", *fresh.extra,
         "-e", "provision_pod_count=1", "-e", f"provision_ready_timeout={timeout}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    injected = None
    try:
        for line in proc.stdout:
            lines.append(line)
            if injected is None and line.startswith(f"FAILED - RETRYING: [localhost]: {READY_TASK}"):
                # The wait saw the pod PROVISIONING; now it breaks for good.
                (pod,) = fresh.pods().values()
                fresh.seen_ids.add(pod["id"])
                assert pod["status"] == "PROVISIONING", pod
                _fault(fresh, "POST", f"pods/{pod['id']}/error", {"detail": "gpuops test: the container cannot run"})
                injected = pod
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines)
    out = " ".join(output.split())
    assert injected is not None, f"the wait never retried:\n{output[-4000:]}"
    assert proc.returncode != 0, output[-4000:]

    polls = [line for line in lines if line.startswith(f"FAILED - RETRYING: [localhost]: {READY_TASK}")]
    match = re.search(r"Stopped waiting for the pods of deployment gpuopserr after (\d+) poll\(s\), "
                      rf"before the {timeout} s timeout, because waiting cannot help: "
                      rf"gpuopserr-0 \({injected['id']}\) is ERROR;", out)
    assert match, out[-4000:]
    # Stopped at the first poll that saw the ERROR: one more than the retries before it, far from the timeout's.
    assert int(match.group(1)) == len(polls) + 1
    assert len(polls) < 5 < retries
    assert "does not start by waiting" in out and "logs" in out and "ansible-playbook teardown.yml" in out
    assert f"was RUNNING after {timeout} s" not in out
