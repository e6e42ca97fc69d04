"""A pod's SSH host keys are pinned from its own log before the first SSH contact (issue 12, item 4).

Real parts only: the local cloud with the Docker backend runs the stand-in of
RunPod's official PyTorch image, whose start script prints the host keys'
fingerprints as RunPod's does; the local cloud serves them from the
container's own log at GET /v2/pods/{id}/logs. provision.yml pins the keys
(the provision role's entry point host_keys, module
gpuops.platform.runpod_host_keys) before wait_for_connection, and SSH then
runs with StrictHostKeyChecking=yes. A man in the middle is a pod whose sshd
gets other host keys after the start, printed nowhere.

GPUOPS_STANDIN_IMAGE names another build of the stand-in for the local cloud
(default gpuops/runpod-pytorch-standin:latest, built by scripts/setup.sh).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.integration.helpers import REPO, VENV_BIN, Deployment, docker_available, host_key_alias, run, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopshk"
STANDIN = os.environ.get("GPUOPS_STANDIN_IMAGE", "gpuops/runpod-pytorch-standin:latest")
WAIT_TASK = "TASK [Wait until the pod answers SSH]"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("deploy"), prefix=PREFIX)
    dep.extra += ["-e", "provision_pod_count=1", "-e", "app_enabled=false"]
    run([str(VENV_BIN / "python"), "-m", "localcloud", "start", "--state-dir", str(dep.state_dir / "localcloud"),
         "--port", str(dep.port), "--pytorch-standin-image", STANDIN, "--ssh-ready-delay", "2"],
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        dep.first_run = dep.playbook("provision.yml")
        yield dep
    finally:
        if dep.api_key_file.exists():
            dep.playbook("teardown.yml", "-e", "force=true", check=False)
        dep.stop()


def known_hosts(dep: Deployment) -> str:
    path = dep.state_dir / "local" / "ssh" / "known_hosts"
    return path.read_text() if path.exists() else ""


def the_pod(dep: Deployment) -> dict:
    pods = dep.pods()
    pod = pods[f"{PREFIX}-0"]
    dep.seen_ids.add(pod["id"])
    return pod


def docker_log_fingerprints(pod_id: str) -> set[str]:
    """The SHA256 fingerprints the pod's container printed, read with docker itself (not through the API)."""
    out = subprocess.run(["docker", "logs", f"gpuops-pod-{pod_id}"], capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    return {word for word in text.split() if word.startswith("SHA256:")}


def pinned_fingerprints(dep: Deployment, alias: str) -> set[str]:
    lines = [line for line in known_hosts(dep).splitlines() if line.split(" ", 1)[0] == alias]
    if not lines:
        return set()
    out = subprocess.run(["ssh-keygen", "-l", "-f", "/dev/stdin"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines()}


def log_requests(dep: Deployment, pod_id: str) -> int:
    """How often the pod's log was read: the local cloud's own access log (uvicorn's)."""
    return (dep.state_dir / "localcloud" / "server.log").read_text().count(f"GET /v2/pods/{pod_id}/logs")


def test_provision_pins_the_logged_keys_and_ssh_checks_them_strictly(deployment):
    pod = the_pod(deployment)
    alias = host_key_alias(pod)
    assert "Pin the pod's SSH host keys from its log" in deployment.first_run.stdout
    logged = docker_log_fingerprints(pod["id"])
    pinned = pinned_fingerprints(deployment, alias)
    assert pinned and pinned <= logged, (pinned, logged)
    args = deployment.ansible("gpu_pods", "-m", "ansible.builtin.debug", "-a", "var=ansible_ssh_common_args").stdout
    assert "StrictHostKeyChecking=yes" in args and "accept-new" not in args, args
    assert "pong" in deployment.ansible("gpu_pods", "-m", "ansible.builtin.ping").stdout
    # Each entry records how its key was trusted.
    entries = [line.split() for line in known_hosts(deployment).splitlines() if line.startswith(alias + " ")]
    assert entries and all(fields[3:] == ["gpuops-trusted-by=logs"] for fields in entries), entries
    # Again: the same keys, nothing changed, and the log was not read again (the local cloud's access log).
    log_reads = log_requests(deployment, pod["id"])
    assert log_reads > 0
    again = deployment.playbook("provision.yml")
    assert pinned_fingerprints(deployment, alias) == pinned
    assert "changed: [%s-0 -> localhost]" % PREFIX not in again.stdout
    assert log_requests(deployment, pod["id"]) == log_reads
    # An entry without the mark (pinned by an older gpuops) is checked against the log once more, and marked.
    path = deployment.state_dir / "local" / "ssh" / "known_hosts"
    path.write_text("".join(" ".join(line.split()[:3]) + "\n" for line in known_hosts(deployment).splitlines()))
    marked = deployment.playbook("provision.yml")
    assert "changed: [%s-0 -> localhost]" % PREFIX in marked.stdout
    assert log_requests(deployment, pod["id"]) > log_reads
    assert all(line.endswith(" gpuops-trusted-by=logs") for line in known_hosts(deployment).splitlines()
               if line.startswith(alias + " "))


def test_a_man_in_the_middle_fails_before_any_ssh_contact(deployment):
    pod = the_pod(deployment)
    before = pod["startedAt"]
    assert deployment.api().post(f"/pods/{pod['id']}/action", json={"action": "restart"}).status_code == 200
    pod = wait_for("the restarted pod", lambda: (p := the_pod(deployment))["ssh"]["direct"]
                   and p["startedAt"] != before and p, timeout=120)
    wait_for("the restarted pod's fingerprints in its log", lambda: docker_log_fingerprints(pod["id"]), timeout=60)
    time.sleep(1)
    # Another sshd identity behind the pod's endpoint, printed nowhere: what a man in the middle presents.
    fake = deployment.pod_exec(pod["id"], (
        "rm -f /etc/ssh/ssh_host_*; for t in rsa ecdsa ed25519; do ssh-keygen -q -t $t -N '' "
        "-f /etc/ssh/ssh_host_${t}_key; done; kill -HUP $(cat /run/sshd.pid); "
        "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")).stdout.split()[1]
    logged = docker_log_fingerprints(pod["id"])
    assert fake not in logged
    alias = host_key_alias(pod)
    result = deployment.playbook("provision.yml", check=False)
    assert result.returncode != 0
    out = result.stdout
    assert "SSH host key MISMATCH for pod %s" % pod["id"] in out, out[-3000:]
    assert fake in out and any(fp in out for fp in logged), out[-3000:]
    # Failed before wait_for_connection: no SSH contact was made, and nothing was pinned for this start.
    assert WAIT_TASK not in out, out[-3000:]
    assert pinned_fingerprints(deployment, alias) == set()


def test_an_image_that_prints_no_fingerprints_fails_unless_tofu_is_chosen(deployment):
    key = (deployment.state_dir / "local" / "ssh" / "id_ed25519.pub").read_text().strip()
    created = deployment.api().post("/pods", json={
        "name": f"{PREFIX}-silent", "image": "ubuntu:24.04", "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
        "ports": ["22/tcp"], "env": {"PUBLIC_KEY": key}})
    assert created.status_code == 201, created.text
    pod_id = created.json()["id"]
    deployment.seen_ids.add(pod_id)
    try:
        wait_for("the silent pod's SSH port", lambda: deployment.api().get(f"/pods/{pod_id}").json()["ssh"]["direct"],
                 timeout=120)
        kh = deployment.state_dir / "silent_known_hosts"
        base = ["localhost", "-m", "gpuops.platform.runpod_host_keys", "-a",
                f"base_url=http://127.0.0.1:{deployment.port}/v2 api_key_file={deployment.api_key_file} "
                f"pod_id={pod_id} known_hosts={kh} log_grace=5 timeout=120"]
        refused = deployment.ansible(*base, check=False)
        assert refused.returncode != 0
        assert "shows no SSH host key fingerprints" in refused.stdout and "gpuops_ssh_host_key_trust=tofu" in \
            refused.stdout, refused.stdout
        assert not kh.exists()
        base[-1] += " trust=tofu"
        tofu = deployment.ansible(*base)
        assert "trusted_by: tofu" in tofu.stdout or '"trusted_by": "tofu"' in tofu.stdout, tofu.stdout
        assert "trusted on first use" in tofu.stdout + tofu.stderr
        assert kh.read_text().count(f"runpod-{pod_id}-") >= 1
        assert all(line.endswith(" gpuops-trusted-by=tofu") for line in kh.read_text().splitlines()), kh.read_text()
        # Keys pinned on first use do not count under trust=logs: the log is read again, and still shows none.
        base[-1] = base[-1].replace(" trust=tofu", "")
        still = deployment.ansible(*base, check=False)
        assert still.returncode != 0 and "shows no SSH host key fingerprints" in still.stdout, still.stdout
        # Under tofu again they are the pinned ones: no change, no new warning.
        base[-1] += " trust=tofu"
        second = deployment.ansible(*base)
        assert "trusted on first use" not in second.stdout + second.stderr, second.stdout
        assert "already_pinned: true" in second.stdout and "changed: false" in second.stdout, second.stdout
    finally:
        deployment.api().delete(f"/pods/{pod_id}")
