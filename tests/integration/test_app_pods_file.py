"""Issue 13, item 11: the API's pods file, rendered by the app role from the inventory (no Terraform state parser).

Real ansible-playbook runs of the app role's `pods` entry point on this machine, with the real
gpuops.platform.runpod inventory plugin (and the real `terraform output -json`) reading the recorded deployment of
tests/fixtures/api: Terraform's recorded state and a local HTTP server that answers with the cloud's recorded pods
(tests/fixtures/api/record_pods_file.py, which also records the API's unit-test fixture). No pod, no container,
no image. About 30 seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fixtures.api.record_pods_file import PODS_FILE, RecordedDeployment, render_pods_file, rendered_file
from tests.integration.helpers import REPO, VENV_BIN, changed_tasks, recap, run

pytestmark = [pytest.mark.integration]

CONFIGURE_STEPS = [{
    "name": "The app role's configuration", "hosts": "localhost", "gather_facts": False,
    "tasks": [
        *({"name": step, "ansible.builtin.include_role": {"name": "gpuops.platform.app", "tasks_from": step}}
          for step in ("preflight", "secrets", "configure")),
        {"name": "Keep the API's volumes for the test",
         "ansible.builtin.copy": {"content": "{{ app_compose_services.api.volumes | to_json }}",
                                  "dest": "{{ test_volumes_file }}", "mode": "0600"}},
    ]}]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[RecordedDeployment]:
    (tmp_path / "recorded").mkdir()
    with RecordedDeployment(tmp_path / "recorded") as dep:
        yield dep


def pods(directory: Path) -> dict[str, dict]:
    return {pod["name"]: pod for pod in json.loads(rendered_file(directory).read_text())["pods"]}


def changed(result) -> int:
    return recap(result.stdout)["localhost"]["changed"]


def test_the_role_renders_the_api_fixture_from_the_recorded_inventory_and_again_changes_nothing(
        deployment: RecordedDeployment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = render_pods_file(deployment.inventory, out)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    # The unit tests' fixture is exactly what the role renders (re-record with record_pods_file.py otherwise).
    assert rendered_file(out).read_bytes() == PODS_FILE.read_bytes()
    assert rendered_file(out).stat().st_mode & 0o777 == 0o600
    assert rendered_file(out).parent.stat().st_mode & 0o777 == 0o700
    again = render_pods_file(deployment.inventory, out)
    assert again.returncode == 0 and changed(again) == 0, changed_tasks(again.stdout)
    # The cloud's live status and cost are not in the file: a pod whose cost changes changes nothing.
    pod_id = next(iter(deployment.pods))
    deployment.pods[pod_id]["runtime"] = {**deployment.pods[pod_id]["runtime"], "uptime": 99999}
    assert changed(render_pods_file(deployment.inventory, out)) == 0


def test_a_restarted_pod_a_new_port_and_a_pod_gone_reach_the_file(deployment: RecordedDeployment,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_pods_file(deployment.inventory, out).returncode == 0
    before = pods(out)
    restarted = before["gpuopsapirec-1"]["id"]
    pod = deployment.pods[restarted]
    pod["startedAt"] = "2026-12-01T10:00:00.000Z"
    pod["ssh"]["direct"] = {**pod["ssh"]["direct"], "port": 24001}
    result = render_pods_file(deployment.inventory, out)
    assert result.returncode == 0 and changed(result) == 1, result.stdout[-3000:]
    after = pods(out)["gpuopsapirec-1"]
    assert after["ssh"]["port"] == 24001
    assert after["ssh"]["host_key_alias"] == f"runpod-{restarted}-1796119200" != before["gpuopsapirec-1"]["ssh"][
        "host_key_alias"]
    # Terraform's state no longer lists the pod: neither does the file.
    output = deployment.state["outputs"]["pods"]
    del output["value"]["gpuopsapirec-1"], output["type"][1]["gpuopsapirec-1"]
    deployment.write()
    result = render_pods_file(deployment.inventory, out)
    assert result.returncode == 0 and changed(result) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert list(pods(out)) == ["gpuopsapirec-0"]


def test_a_slurm_node_name_is_the_pods_node(deployment: RecordedDeployment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_pods_file(deployment.inventory, out, "-e", "slurm_node_name=gpu-a").returncode == 0
    assert {pod["node"] for pod in pods(out).values()} == {"gpu-a"}


def test_hosts_without_a_pod_id_are_refused_by_name(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"gpu_pods": {"hosts": {"box-1": {"ansible_host": "10.0.0.1"}}}}))
    result = render_pods_file(inventory, tmp_path / "out")
    assert result.returncode != 0
    assert "box-1 in the group gpu_pods have no runpod_pod_id" in " ".join(result.stdout.split())
    assert not rendered_file(tmp_path / "out").exists()


def test_no_pods_is_an_empty_list(tmp_path: Path) -> None:
    result = render_pods_file(Path("localhost,"), tmp_path / "out", "-e", "ansible_connection=local")
    assert result.returncode == 0, result.stdout[-3000:]
    assert json.loads(rendered_file(tmp_path / "out").read_text()) == {"format": 1, "pods": []}


def test_the_api_gets_the_file_through_a_read_only_directory_mount(deployment: RecordedDeployment,
                                                                  tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    (stack / "slurm").mkdir(parents=True)
    (stack / "slurm" / "jwt_hs256.key").write_bytes(b"k" * 64)
    # The local cloud's key, which a started local cloud writes (the API gets a copy of it).
    (tmp_path / "state" / "localcloud").mkdir(parents=True)
    (tmp_path / "state" / "localcloud" / "api_key").write_text("local-key\n")
    steps = tmp_path / "steps.yml"
    steps.write_text(yaml.safe_dump(CONFIGURE_STEPS, sort_keys=False))
    volumes = tmp_path / "volumes.json"
    run([str(VENV_BIN / "ansible-playbook"), "-i", str(deployment.inventory), str(steps),
         "-e", f"gpuops_state_dir={tmp_path / 'state'}", "-e", f"app_stack_dir={stack}", "-e", f"gpuops_root={REPO}",
         "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}",
         "-e", "_app_api_ref=gpuops/api:test", "-e", "_app_web_ref=gpuops/web:test",
         "-e", f"test_volumes_file={volumes}"], timeout=300)
    config = yaml.safe_load((stack / "app" / "api.yml").read_text())
    assert config["pods_file"] == "/var/lib/gpuops/inventory/pods.json"
    assert "terraform_state_file" not in config
    assert f"{stack / 'app' / 'inventory'}:/var/lib/gpuops/inventory:ro" in json.loads(volumes.read_text())
    assert not [v for v in json.loads(volumes.read_text()) if "terraform" in v]
    assert (stack / "app" / "inventory" / "pods.json").read_bytes() == PODS_FILE.read_bytes()
