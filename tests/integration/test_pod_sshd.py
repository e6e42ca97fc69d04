"""The pods' sshd takes keys only and nothing on a pod listens beyond loopback but sshd and slurmd (issue 12, item 11).

Real parts only: the local cloud with the Docker backend runs the stand-in of
RunPod's official PyTorch image (images/runpod-pytorch-standin), which, as the
official images do, leaves the distribution's sshd_config alone (password
authentication on) and starts nginx, RunPod's proxy, on all addresses at every
start. provision.yml (the provision role's `pod` entry point), then the
service plane, the pod as a Slurm node, its tunnel and the GPU exporter, as
site.yml deploys them (without the API). The test asks the real sshd, over a
real SSH connection, which authentication methods it offers, and reads the
pod's own /proc/net/tcp*.

GPUOPS_STANDIN_IMAGE names another build of the stand-in for the local cloud
(default gpuops/runpod-pytorch-standin:latest, built by scripts/setup.sh).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import subprocess

import paramiko
import pytest

from tests.integration.helpers import REPO, VENV_BIN, Deployment, changed_tasks, docker_available, recap, run, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopssshd"
STANDIN = os.environ.get("GPUOPS_STANDIN_IMAGE", "gpuops/runpod-pytorch-standin:latest")
#: RunPod's nginx proxy (container-template/proxy/nginx.conf of runpod/containers), as the stand-in starts it.
NGINX_PORTS = {9091, 3001, 7861, 8081, 8001, 7270}
#: A password the test gives root and the job account, so that a password login could succeed if sshd took one.
PASSWORD = "gpuops-sshd-test-password"
POD_TASKS = "gpuops.platform.provision : "


def listeners(dep: Deployment, pod_id: str) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket in the pod's network namespace, from the kernel's own tables."""
    text = dep.pod_exec(pod_id, "cat /proc/net/tcp /proc/net/tcp6").stdout
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "sl" or fields[3] != "0A":
            continue
        hex_address, hex_port = fields[1].split(":")
        raw = b"".join(struct.pack("<I", int(hex_address[i:i + 8], 16)) for i in range(0, len(hex_address), 8))
        family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
        found.add((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


def beyond_loopback(found: set[tuple[str, int]]) -> set[tuple[str, int]]:
    def loopback(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        mapped = getattr(ip, "ipv4_mapped", None)
        return ip.is_loopback or (mapped is not None and mapped.is_loopback)
    return {(address, port) for address, port in found if not loopback(address)}


def sshd_settings(dep: Deployment, pod_id: str) -> dict[str, str]:
    out = dep.pod_exec(pod_id, "/usr/sbin/sshd -T").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def auth_methods(pod: dict, user: str) -> tuple[list[str], str]:
    """Ask the pod's sshd (through its public SSH port) what it lets `user` try, then try PASSWORD.

    Returns (the methods sshd allows, the outcome of the password attempt).
    """
    direct = pod["ssh"]["direct"]
    transport = paramiko.Transport((direct["host"], int(direct["port"])))
    try:
        transport.start_client(timeout=30)
        try:
            transport.auth_none(user)
            allowed: list[str] = []
        except paramiko.BadAuthenticationType as error:
            allowed = list(error.allowed_types)
        try:
            transport.auth_password(user, PASSWORD, fallback=False)
            outcome = "logged in"
        except paramiko.BadAuthenticationType as error:
            outcome = f"refused: password is not an allowed method ({','.join(error.allowed_types)})"
        except paramiko.AuthenticationException as error:
            outcome = f"refused: {error}"
        return allowed, outcome
    finally:
        transport.close()


def ssh_password_login(dep: Deployment, pod: dict) -> subprocess.CompletedProcess:
    """OpenSSH's client, asked to log in as root by password only, without a terminal to ask one on."""
    direct = pod["ssh"]["direct"]
    return subprocess.run(
        ["ssh", "-p", str(direct["port"]), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
         "-o", "PreferredAuthentications=password,keyboard-interactive", f"root@{direct['host']}", "true"],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("deploy"), prefix=PREFIX)
    dep.use_service_plane()
    dep.extra += ["-e", "provision_pod_count=1", "-e", "app_enabled=false"]
    # The local cloud of this deployment, running STANDIN for runpod/pytorch:* (localcloud.yml finds it healthy).
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


def the_pod(dep: Deployment) -> dict:
    pods = dep.pods()
    assert list(pods) == [f"{PREFIX}-0"], pods
    pod = pods[f"{PREFIX}-0"]
    dep.seen_ids.add(pod["id"])
    return pod


def give_passwords(dep: Deployment, pod_id: str) -> None:
    """Root (and a second account) get a password, so that only sshd's settings stand between it and a login."""
    dep.pod_exec(pod_id, f"id gpuopspw >/dev/null 2>&1 || useradd -m gpuopspw; "
                         f"printf 'root:{PASSWORD}\\ngpuopspw:{PASSWORD}\\n' | chpasswd")


def test_sshd_takes_keys_only(deployment):
    pod = the_pod(deployment)
    settings = sshd_settings(deployment, pod["id"])
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] in ("prohibit-password", "without-password")
    # The settings come first in sshd_config, before its Include of sshd_config.d.
    config = deployment.pod_exec(pod["id"], "cat /etc/ssh/sshd_config").stdout
    assert config.startswith("# BEGIN gpuops.platform.provision")
    give_passwords(deployment, pod["id"])
    for user in ("root", "gpuopspw"):
        allowed, outcome = auth_methods(pod, user)
        assert allowed == ["publickey"], (user, allowed)
        assert outcome.startswith("refused: password is not an allowed method"), (user, outcome)
    login = ssh_password_login(deployment, pod)
    assert login.returncode == 255
    assert "Permission denied (publickey)." in login.stderr, login.stderr
    # Keys still work: Ansible's own connection.
    assert "pong" in deployment.ansible("gpu_pods", "-m", "ansible.builtin.ping").stdout


def test_nothing_but_sshd_and_slurmd_listens_beyond_loopback_after_deploy(deployment):
    pod = the_pod(deployment)
    deployment.deploy_cluster()
    deployment.playbook("exporter.yml")
    ports = deployment.service_plane_vars
    slurmd_port = ports["slurm_controller_slurmd_port"]
    found = listeners(deployment, pod["id"])
    exposed = beyond_loopback(found)
    sshd_ports = {int(sshd_settings(deployment, pod["id"])["port"])}
    # The pod's own address, where its node name points and slurmd binds (NoInAddrAny).
    node_addr = deployment.pod_exec(pod["id"], f"getent ahostsv4 {PREFIX}-0 | head -1").stdout.split()[0]
    assert {port for _, port in exposed} <= sshd_ports | {slurmd_port}, exposed
    assert {address for address, port in exposed if port == slurmd_port} == {node_addr}, exposed
    assert any(port in sshd_ports for _, port in exposed), exposed
    assert not {port for _, port in found} & NGINX_PORTS, found
    # The deployment does run its listeners, on loopback: the exporter, the tunnel's reverse forwards.
    assert ("127.0.0.1", 9400) in found, found
    assert any(address == "127.0.0.1" and port == ports["slurm_controller_slurmctld_port"] for address, port in found)


def test_second_run_changes_nothing(deployment):
    result = deployment.playbook("provision.yml")
    ours = [task for task in changed_tasks(result.stdout) if task.startswith(POD_TASKS)]
    assert ours == [], ours
    assert recap(result.stdout)[f"{PREFIX}-0"]["changed"] == 0


def test_a_restart_undoes_it_check_mode_says_so_and_the_next_run_applies_it_again(deployment):
    pod = the_pod(deployment)
    action = deployment.api().post(f"/pods/{pod['id']}/action", json={"action": "restart"})
    assert action.status_code == 200, action.text
    wait_for("sshd in the restarted pod",
             lambda: deployment.pod_exec(pod["id"], "pgrep -x sshd", check=False).returncode == 0, timeout=120)
    pod = wait_for("the restarted pod's SSH port", lambda: (p := the_pod(deployment))["ssh"]["direct"] and p,
                   timeout=120)
    # A fresh container from the image: as RunPod's official image starts, the stand-in is not kinder.
    assert sshd_settings(deployment, pod["id"])["passwordauthentication"] == "yes"
    wait_for("nginx in the restarted pod",
             lambda: NGINX_PORTS <= {port for _, port in beyond_loopback(listeners(deployment, pod["id"]))},
             timeout=60)
    give_passwords(deployment, pod["id"])
    allowed, _ = auth_methods(pod, "root")
    assert "password" in allowed, allowed
    before = deployment.pod_exec(pod["id"], "md5sum /etc/ssh/sshd_config").stdout

    check = deployment.playbook("provision.yml", "--check")
    ours = {task.rsplit(": changed:", 1)[0] for task in changed_tasks(check.stdout) if task.startswith(POD_TASKS)}
    assert POD_TASKS + "Make sshd take keys only, root included, ahead of everything else in sshd_config" in ours
    assert any("Stop the image's services" in task for task in ours), ours
    assert deployment.pod_exec(pod["id"], "md5sum /etc/ssh/sshd_config").stdout == before
    assert sshd_settings(deployment, pod["id"])["passwordauthentication"] == "yes"
    assert NGINX_PORTS <= {port for _, port in listeners(deployment, pod["id"])}

    deployment.playbook("provision.yml")
    assert sshd_settings(deployment, pod["id"])["passwordauthentication"] == "no"
    allowed, outcome = auth_methods(pod, "root")
    assert allowed == ["publickey"] and outcome.startswith("refused"), (allowed, outcome)
    assert not {port for _, port in listeners(deployment, pod["id"])} & NGINX_PORTS
