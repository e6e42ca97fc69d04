"""playbooks/tunnel.yml's systemd path, for real: each tunnel a unit gpuops-tunnel-<name> run by systemd as PID 1.

The control host is a Docker container that boots systemd (Debian 13, systemd 257; image built here from the
locally bootstrapped gpuops/debian-base:trixie with systemd, openssh-server and autossh). Ansible runs on this
machine and reaches the container with the community.docker.docker connection: the inventory's ``localhost``
is the container, and the one "pod" is the container's own sshd on 127.0.0.1:22, with a key and a pinned host key
made for this test, and an HTTP server on its loopback port 9400 standing in for the GPU exporter. So the
playbook itself runs unchanged: the supervise role finds systemd as PID 1 and root, the module records the
tunnel and returns its command (supervisor: external), the role writes and starts the unit, the module waits for
the tunnel; with gpuops_tunnel_state=absent the unit is stopped and removed before the module removes the files.

This machine's cgroup hierarchy is v1 (hybrid), which systemd 257 accepts only when asked
(SYSTEMD_PROC_CMDLINE below); the container needs CAP_SYS_ADMIN and /sys/fs/cgroup writable. It is removed
whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, VENV_BIN, changed_tasks, docker_available, recap, run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

BASE_IMAGE = "gpuops/debian-base:trixie"
IMAGE = "gpuops/test-systemd-control-host:trixie"
# The control host: systemd as PID 1, sshd (the stand-in pod), autossh and ssh (the tunnel), procps (pgrep).
# The host keys made at package installation are the container's own (a throwaway test image).
DOCKERFILE = f"""\
FROM {BASE_IMAGE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd openssh-server openssh-client autossh procps \\
 && rm -rf /var/lib/apt/lists/*
"""
POD = "sdpod"
TUNNEL = f"gpuops-local-{POD}"
UNIT = f"gpuops-tunnel-{TUNNEL}.service"
ALIAS = f"runpod-{POD}-1700000000"
# Paths in the container (the control host).
STATE = "/var/lib/gpuops-test"
TUNNELS = f"{STATE}/tunnels"
KNOWN_HOSTS = f"{STATE}/ssh/known_hosts"
KEY = "/root/.ssh/id_ed25519"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
# gpuops_tunnel_port_base + 2 * slot 0: the exporter's local port, which only the tunnel listens on.
EXPORTER_LOCAL = 19400


def docker(*args: str, check: bool = True, timeout: int = 120, input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, input=input)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def ensure_image() -> None:
    """Build the control host's image unless it exists from this very Dockerfile (apt through the base's mirror)."""
    digest = hashlib.sha256(DOCKERFILE.encode()).hexdigest()[:16]
    current = docker("image", "inspect", "-f", '{{ index .Config.Labels "io.gpuops.build-hash" }}', IMAGE, check=False)
    if current.returncode == 0 and current.stdout.strip() == digest:
        return
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        raise AssertionError(f"{BASE_IMAGE} is missing: scripts/setup.sh bootstraps it (make setup)")
    docker("build", "-q", "--label", f"io.gpuops.build-hash={digest}", "-t", IMAGE, "-", input=DOCKERFILE, timeout=600)


class ControlHost:
    """The systemd container and an inventory whose localhost it is."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.inventory = root / "inventory"

    def sh(self, command: str, check: bool = True, timeout: int = 60) -> subprocess.CompletedProcess:
        return docker("exec", self.name, "sh", "-c", command, check=check, timeout=timeout)

    def show(self, *properties: str) -> dict[str, str]:
        out = self.sh(f"systemctl show {UNIT} " + " ".join(f"-p {p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def answers(self, port: int) -> bool:
        """Whether an HTTP server answers 200 on the container's 127.0.0.1:<port>."""
        return self.sh(
            "python3 -c \"import sys, urllib.request; "
            f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2).status != 200)\"",
            check=False).returncode == 0

    def pids(self, program: str) -> list[int]:
        return [int(p) for p in self.sh(f"pgrep -x {program}", check=False).stdout.split()]

    def files(self) -> list[str]:
        return sorted(self.sh(f"ls {TUNNELS} 2>/dev/null || true").stdout.split())

    def playbook(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), "playbooks/tunnel.yml",
                    "-e", f"gpuops_state_dir={self.root / 'state'}", "-e", f"gpuops_tunnel_state_dir={TUNNELS}",
                    "-e", f"gpuops_tunnel_known_hosts={KNOWN_HOSTS}", *args], check=check, timeout=300)


def wait_until(predicate, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.5)
    return None


@pytest.fixture(scope="module")
def control_host(tmp_path_factory):
    ensure_image()
    root = tmp_path_factory.mktemp("tunnel-systemd")
    host = ControlHost(f"gpuops-test-systemd-{secrets.token_hex(3)}", root)
    docker("run", "-d", "--name", host.name, "--label", "io.gpuops.test=tunnel-systemd", "--cap-add", "SYS_ADMIN",
           "--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-e", "container=docker",
           "-e", "SYSTEMD_PROC_CMDLINE=systemd.unified_cgroup_hierarchy=0 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1",
           "--entrypoint", "/lib/systemd/systemd", IMAGE)
    try:
        booted = wait_until(lambda: host.sh("systemctl is-system-running", check=False).stdout.strip()
                            in ("running", "degraded"), 60)
        assert booted is not None, "systemd did not boot:\n" + docker("logs", host.name, check=False).stdout[-3000:]
        # The pod's side: root's key authorised, its host key pinned under the pod's alias, the exporter stand-in.
        host.sh(f"mkdir -p -m 0700 /root/.ssh {STATE}/ssh && ssh-keygen -q -t ed25519 -N '' -f {KEY} "
                f"&& cp {KEY}.pub /root/.ssh/authorized_keys "
                f"&& printf '%s %s\\n' {ALIAS} \"$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)\" > {KNOWN_HOSTS} "
                "&& systemctl is-active ssh.service")
        docker("exec", "-d", host.name, "python3", "-m", "http.server", "--bind", "127.0.0.1", "9400")
        assert wait_until(lambda: host.answers(9400), 20) is not None, "the exporter stand-in did not start"
        # The inventory: localhost is the container; the pod is its sshd. Variables as in inventories/local.
        (host.inventory / "group_vars" / "all").mkdir(parents=True)
        (host.inventory / "group_vars" / "all" / "common.yml").write_text((REPO / "inventories/common.yml").read_text())
        (host.inventory / "group_vars" / "all" / "cloud.yml").write_text(
            (REPO / "inventories/local/group_vars/all/cloud.yml").read_text())
        (host.inventory / "hosts.yml").write_text(json.dumps({"all": {
            "hosts": {"localhost": {"ansible_connection": "community.docker.docker", "ansible_host": host.name,
                                    "ansible_python_interpreter": "/usr/bin/python3"}},
            "children": {"gpu_pods": {"hosts": {POD: {
                "ansible_host": "127.0.0.1", "ansible_port": 22, "ansible_ssh_private_key_file": KEY,
                "runpod_pod_index": 0, "runpod_host_key_alias": ALIAS}}}},
        }}))
        yield host
    finally:
        docker("rm", "-f", host.name, check=False)


def assert_no_change(result: subprocess.CompletedProcess) -> None:
    counts = recap(result.stdout)
    assert counts and all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), (
        counts, changed_tasks(result.stdout))


def test_tunnel_playbook_under_systemd(control_host):
    host = control_host

    # Check mode first: it would write the unit, and writes nothing.
    result = host.playbook("--check", "--diff")
    assert recap(result.stdout)["localhost"]["changed"] >= 1, result.stdout[-3000:]
    assert "+ExecStart=/usr/bin/autossh -M 0 " in result.stdout and "+Restart=always" in result.stdout, result.stdout
    assert host.sh(f"test -e {UNIT_FILE}", check=False).returncode != 0
    assert host.files() == []
    assert host.pids("autossh") == []

    # Apply: the unit runs autossh (Restart=always, enabled), and the exporter answers through the tunnel.
    result = host.playbook()
    counts = recap(result.stdout)
    assert counts["localhost"]["changed"] >= 2 and counts[POD]["changed"] == 1, (counts, changed_tasks(result.stdout))
    assert "Start and enable the tunnels' units" in result.stdout
    unit = host.show("ActiveState", "SubState", "Restart", "UnitFileState", "MainPID", "NRestarts", "ExecStart")
    assert (unit["ActiveState"], unit["SubState"], unit["Restart"], unit["UnitFileState"]) == (
        "active", "running", "always", "enabled"), unit
    pid = int(unit["MainPID"])
    assert host.pids("autossh") == [pid]
    assert "argv[]=/usr/bin/autossh " in unit["ExecStart"], unit["ExecStart"]
    assert host.sh(f"cat {TUNNELS}/{TUNNEL}.pid").stdout.strip() == str(pid)
    assert host.answers(EXPORTER_LOCAL)
    config = json.loads(host.sh(f"cat {TUNNELS}/{TUNNEL}.json").stdout)
    assert config["supervisor"] == "external" and config["host_key_alias"] == ALIAS, config

    # Again: no change, the same autossh.
    assert_no_change(host.playbook())
    assert int(host.show("MainPID")["MainPID"]) == pid

    # autossh is killed: systemd starts it again (RestartSec=5), the tunnel answers again, no ssh is left over.
    ssh_before = host.pids("ssh")
    assert len(ssh_before) == 1, ssh_before
    host.sh(f"kill -KILL {pid}")

    def back() -> bool:
        now = host.show("MainPID", "ActiveState")
        return now["ActiveState"] == "active" and int(now["MainPID"]) not in (0, pid) and host.answers(EXPORTER_LOCAL)

    restarted = wait_until(back, 30)
    assert restarted is not None, host.sh(f"journalctl -u {UNIT} --no-pager | tail -20", check=False).stdout
    unit = host.show("MainPID", "NRestarts")
    new_pid = int(unit["MainPID"])
    assert int(unit["NRestarts"]) == 1, unit
    assert host.pids("autossh") == [new_pid]
    assert len(host.pids("ssh")) == 1 and host.pids("ssh") != ssh_before
    assert host.sh(f"cat {TUNNELS}/{TUNNEL}.pid").stdout.strip() == str(new_pid)

    # A run after systemd's restart changes nothing; nor does check mode.
    assert_no_change(host.playbook())
    assert_no_change(host.playbook("--check", "--diff"))
    assert int(host.show("MainPID")["MainPID"]) == new_pid

    # Teardown's path: the unit is stopped and removed first, then the tunnel's files.
    result = host.playbook("-e", "gpuops_tunnel_state=absent")
    assert recap(result.stdout)["localhost"]["changed"] >= 2, (recap(result.stdout), changed_tasks(result.stdout))
    assert host.sh(f"test -e {UNIT_FILE}", check=False).returncode != 0
    assert host.show("LoadState", "ActiveState") == {"LoadState": "not-found", "ActiveState": "inactive"}, \
        host.sh(f"journalctl -u {UNIT} --no-pager | tail -20; systemctl status {UNIT} --no-pager", check=False).stdout
    assert host.pids("autossh") == [] and host.pids("ssh") == []
    assert host.files() == []
    assert not host.answers(EXPORTER_LOCAL) and host.answers(9400)
    assert_no_change(host.playbook("-e", "gpuops_tunnel_state=absent"))
