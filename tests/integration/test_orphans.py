"""Orphans (issue 12, item 16): pods of this deployment that its Terraform state does not know.

Everything is real: the local cloud (`python -m localcloud`, memory backend: pods are records, nothing runs) in
this test's own state directory on a free port, Terraform with the stand-in provider, the provision role, and
playbooks/orphans.yml and teardown.yml as site.yml and an operator run them. A pod is created behind Terraform's
back, through the cloud's REST v2 API, with the deployment's naming and tag, as a run that crashed after the
provider created it would leave it; next to it a pod of another deployment and a pod gpuops did not make, both
with the deployment's names.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.helpers import VENV_BIN, Deployment, run, wait_for

pytestmark = [pytest.mark.integration]

PREFIX = "gpuopsorph"
OTHER_DEPLOYMENT = "0therdep1oyment9"


def _flat(result) -> str:
    return re.sub(r"\s+", " ", result.stdout + result.stderr)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("orphans")
    dep = Deployment(root, prefix=PREFIX)
    run([str(VENV_BIN / "python"), "-m", "localcloud", "start", "--backend", "memory",
         "--state-dir", str(dep.state_dir / "localcloud"), "--port", str(dep.port)])
    # The provision role alone (playbooks/provision.yml also waits for SSH, which memory pods never answer).
    provision = root / "provision.yml"
    provision.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n"
        "    - role: gpuops.platform.provision\n      vars:\n        provision_state: present\n")
    dep.provision_playbook = str(provision)
    try:
        yield dep
    finally:
        dep.stop()


def _create(dep: Deployment, name: str, env: dict[str, str]) -> str:
    """POST /v2/pods with a CreatePodRequest, behind Terraform's back."""
    answer = dep.api().post("/pods", json={
        "name": name, "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}, "ports": ["22/tcp"], "env": env,
    })
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["id"]


def _alive(dep: Deployment) -> dict[str, dict]:
    pods = dep.api().get("/pods").json()["pods"]
    return {pod["id"]: pod for pod in pods if pod.get("status") != "TERMINATED"}


def test_orphans_are_listed_by_site_and_purged_only_on_request(deployment):
    dep = deployment
    dep.playbook("localcloud.yml")
    dep.playbook(dep.provision_playbook, "-e", "provision_pod_count=1")

    # The deployment's id: random, kept in the state directory, on every pod Terraform made.
    id_file = dep.state_dir / "local" / "deployment-id"
    deployment_id = id_file.read_text().strip()
    assert re.fullmatch(r"[a-z0-9]{16}", deployment_id), deployment_id
    assert oct(id_file.stat().st_mode & 0o777) == "0o600"
    state = json.loads((dep.state_dir / "local" / "terraform" / "terraform.tfstate").read_text())
    known = [inst["attributes"]["id"] for res in state["resources"] if res["type"] == "runpod_pod"
             for inst in res["instances"]]
    assert len(known) == 1
    assert _alive(dep)[known[0]]["env"]["GPUOPS_DEPLOYMENT"] == deployment_id
    # A second run keeps the id (and changes no pod).
    dep.playbook(dep.provision_playbook, "-e", "provision_pod_count=1")
    assert id_file.read_text().strip() == deployment_id and list(_alive(dep)) == known

    # Behind Terraform's back: the pod a crashed run leaves (a second gpuops-0 with the tag), another
    # deployment's pod and one made by hand, both with the deployment's names.
    orphan = _create(dep, f"{PREFIX}-0", {"GPUOPS_DEPLOYMENT": deployment_id})
    foreign = _create(dep, f"{PREFIX}-0", {"GPUOPS_DEPLOYMENT": OTHER_DEPLOYMENT})
    by_hand = _create(dep, f"{PREFIX}-1", {})
    before = wait_for("the pods made behind Terraform's back to run", lambda: (
        lambda pods: pods if all(pods.get(i, {}).get("status") == "RUNNING" for i in (orphan, foreign, by_hand))
        else None)(_alive(dep)), timeout=60)
    assert {orphan, foreign, by_hand, known[0]} <= set(before)

    # site.yml's check: a warning with id, name, status and cost; nothing changes, nothing fails.
    result = dep.playbook("orphans.yml")
    out = _flat(result)
    assert f"[WARNING] 1 pod(s) of deployment {PREFIX} (id {deployment_id}) are not in its Terraform state" in out, out
    cost = "$%s/h" % round(float(before[orphan]["cost"]), 2)
    assert f"{orphan} {PREFIX}-0 {before[orphan]['status']} {cost}" in out, out
    assert "ansible-playbook teardown.yml -e purge_orphans=true" in out
    assert "2 pod(s) are named like the pods of deployment" in out
    assert f"{foreign} {PREFIX}-0" in out and f"deployment {OTHER_DEPLOYMENT}" in out
    assert f"{by_hand} {PREFIX}-1" in out and "no gpuops tag" in out
    assert "changed=0" in result.stdout and "failed=0" in result.stdout
    assert _alive(dep).keys() == before.keys()

    # A bad flag is refused before anything goes.
    refused = dep.playbook("./teardown.yml", "-e", "purge_orphans=maybe", "-e", "force=true", check=False)
    assert refused.returncode != 0 and "purge_orphans must be true or false" in _flat(refused)
    assert _alive(dep).keys() == before.keys()

    # The pods' part of teardown.yml without the flag (the memory backend's pods answer no SSH, which
    # teardown.yml's archive needs): the deployment's pods go, the orphan is listed with how to purge it.
    result = dep.playbook("teardown.yml")
    out = _flat(result)
    assert f"No pod of deployment {PREFIX} is left" in out, out
    assert f"{orphan} {PREFIX}-0" in out and "teardown.yml -e purge_orphans=true terminates them" in out, out
    assert set(_alive(dep)) == {orphan, foreign, by_hand}

    # With the flag: the orphan is terminated and reported; the other deployment's and the hand-made pod stay.
    result = dep.playbook("./teardown.yml", "-e", "purge_orphans=true")
    out = _flat(result)
    assert f"Terminated 1 orphan pod(s) of deployment {PREFIX} (id {deployment_id})" in out, out
    assert f"{orphan} {PREFIX}-0" in out
    assert set(_alive(dep)) == {foreign, by_hand}

    # Again: nothing left to terminate, nothing changes.
    result = dep.playbook("./teardown.yml", "-e", "purge_orphans=true")
    out = _flat(result)
    assert "Terminated" not in out and "not in its Terraform state" not in out, out
    assert set(_alive(dep)) == {foreign, by_hand}
