"""The service plane on a host reached over SSH, as AWX needs it (a VM that persists).

site.yml runs with gpuops_service_plane_host: the stack (Slurm's controller
and accounting, Prometheus, the API...) and the autossh tunnels to the pods
are deployed on that host through Ansible's SSH connection and Docker's own
SSH transport, never on the control host. The stand-in for the VM is this
machine, reached through an sshd of the test's own on loopback, with a key
in an ssh-agent and the host's key in known_hosts, as a user reaches a VM.
Its files go to a directory of their own (gpuops_service_plane_dir), apart
from the deployment's state on the control host, so that a file one side
expects from the other and never gets shows up as a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.helpers import VENV_BIN, changed_tasks, docker_available, free_port, recap
from tests.integration.site.conftest import Site

pytestmark = pytest.mark.integration

SERVICE_PLANE = "gpuops-service-plane"


class LoopbackSSH:
    """An sshd of its own on 127.0.0.1, root by key only, and an ssh-agent holding that key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.port = free_port()
        self.log = root / "sshd.log"
        for name in ("host_ed25519", "client_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
        shutil.copy(root / "client_ed25519.pub", root / "authorized_keys")
        config = root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root}/host_ed25519\n"
            f"AuthorizedKeysFile {root}/authorized_keys\nPidFile {root}/sshd.pid\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(self.log)])
        self.agent_sock = root / "agent.sock"
        self.agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.agent_sock)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (self.agent_sock.exists() and "Server listening" in self._log()) and time.monotonic() < deadline:
            time.sleep(0.1)
        subprocess.run(["ssh-add", "-q", str(root / "client_ed25519")], env=self.env(), check=True)
        # The VM's host key, known to the user's SSH (Ansible's connection and Docker's both check it).
        self.known_hosts = Path.home() / ".ssh" / "known_hosts"
        self.known_hosts.parent.mkdir(mode=0o700, exist_ok=True)
        host_key = (root / "host_ed25519.pub").read_text().split()[:2]
        with self.known_hosts.open("a") as out:
            out.write(f"[127.0.0.1]:{self.port} {' '.join(host_key)}\n")

    def _log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "SSH_AUTH_SOCK": str(self.agent_sock)}

    def logins(self) -> int:
        return len(re.findall(r"Accepted publickey for root from 127\.0\.0\.1", self._log()))

    def stop(self) -> None:
        # The test's own line goes, nothing else (ssh-keygen -R would leave a known_hosts.old behind).
        ours = f"[127.0.0.1]:{self.port} "
        lines = self.known_hosts.read_text().splitlines(keepends=True)
        self.known_hosts.write_text("".join(line for line in lines if not line.startswith(ours)))
        for process in (self.sshd, self.agent):
            process.terminate()
            process.wait(timeout=10)


class RemoteSite(Site):
    """A site.yml deployment whose service plane is the loopback SSH host."""

    def __init__(self, root: Path, ssh: LoopbackSSH) -> None:
        super().__init__(root)
        self.ssh = ssh
        self.service_plane_dir = root / "service-plane"
        self.extra = [*self.extra,
                      "-e", "gpuops_service_plane_host=127.0.0.1",
                      "-e", f"gpuops_service_plane_port={ssh.port}",
                      "-e", f"gpuops_service_plane_dir={self.service_plane_dir}",
                      # The VM's Python needs what community.docker's modules need (requests).
                      "-e", f"gpuops_service_plane_python={VENV_BIN / 'python'}"]
        self.stack_dir = self.service_plane_dir / "stack"
        self.tunnel_dir = self.service_plane_dir / "local" / "tunnels"

    def playbook(self, name, *args, check=True, env=None, wrapper=None):
        return super().playbook(name, *args, check=check, env=env or self.ssh.env(), wrapper=wrapper)


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    if not docker_available():
        pytest.skip("needs a Docker engine (scripts/setup.sh)")
    root = tmp_path_factory.mktemp("remote-service-plane")
    ssh = LoopbackSSH(root / "ssh")
    deployment = RemoteSite(root, ssh)
    try:
        deployment.first_site_run()
        yield deployment
    finally:
        if not deployment.torn_down:
            deployment.teardown(check=False)
        deployment.purge()
        ssh.stop()


@pytest.fixture(scope="module")
def deployed(remote):
    result = remote.first_run
    assert result.returncode == 0, (
        f"site.yml failed ({result.returncode})\n--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-3000:]}"
        f"\n--- the stack's containers then\n{getattr(remote, 'first_run_diagnosis', '')}")
    return remote


def test_site_deploys_the_stack_and_the_tunnels_on_the_service_plane_over_ssh(deployed):
    out = deployed.first_run.stdout
    hosts = recap(out)
    assert SERVICE_PLANE in hosts and hosts[SERVICE_PLANE]["failed"] == 0, hosts
    # Ansible and Docker reached the service plane through the loopback sshd, many times.
    assert deployed.ssh.logins() >= 3, deployed.ssh.logins()
    # Its files are on the service plane's side, none in the control host's state directory.
    assert (deployed.stack_dir / "compose.yaml").is_file()
    assert (deployed.stack_dir / "slurm" / "slurm.conf").is_file()
    assert not (deployed.state_dir / "stack").exists()
    assert not (deployed.state_dir / "local" / "tunnels").exists()
    # The tunnels run there, one per pod, and Slurm and Prometheus work through them.
    pods = deployed.pod_list()
    assert len(deployed.tunnel_pids()) == len(pods) == 2
    assert re.search(r"Smoke job \d+ COMPLETED on ", out), out[-4000:]
    for pod in pods:
        assert deployed.query(f'DCGM_FI_DEV_GPU_UTIL{{pod="{pod["name"]}"}}'), pod["name"]
    assert "The service plane is 127.0.0.1" in out


def test_the_service_plane_gets_private_copies_of_the_pods_key_and_host_keys(deployed):
    ssh_dir = deployed.service_plane_dir / "local" / "ssh"
    for name in ("id_ed25519", "known_hosts"):
        copy = ssh_dir / name
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600, name
        assert copy.read_bytes() == (deployed.state_dir / "local" / "ssh" / name).read_bytes(), name
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700


def test_a_second_run_changes_nothing(deployed):
    again = deployed.site_again()
    assert changed_tasks(again.stdout) == [], changed_tasks(again.stdout)
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), recap(again.stdout)


def test_submit_job_fetches_the_output_from_the_service_plane(deployed):
    result = deployed.playbook("./submit_job.yml", "-e", "script=examples/hello.sh", "-e", "gpus_per_node=1")
    job_id = re.search(r"Submitted batch job (\d+)", result.stdout).group(1)
    out = deployed.results_dir / job_id / f"slurm-{job_id}.out"
    assert out.is_file(), sorted(p.name for p in (deployed.results_dir / job_id).iterdir())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest, manifest
    # It came from the service plane's store (the node handed it over), where it stays.
    assert (deployed.stack_dir / "job-output" / "jobs" / job_id / f"slurm-{job_id}.out").read_bytes() == out.read_bytes()
    deployed.job_id = job_id


def test_teardown_archives_the_output_and_removes_the_stack_from_the_service_plane(deployed):
    job_id = getattr(deployed, "job_id", None)
    assert job_id, "test_submit_job_fetches_the_output_from_the_service_plane did not run first"
    result = deployed.teardown()
    archive = re.search(r"archived in (\S+?)\.?$", result.stdout, re.MULTILINE)
    assert archive, result.stdout[-3000:]
    kept = Path(archive.group(1)) / "job-output" / job_id / f"slurm-{job_id}.out"
    assert kept.is_file(), kept
    # The Compose project is gone from the service plane's Docker (its directory stays, as on this machine).
    assert "PLAY [Remove the stack from the service plane]" in result.stdout
    assert deployed.stack_containers() == []
    assert deployed.tunnel_pids() == []
    # The packed copies are gone, from the service plane and from the archive.
    assert not list(deployed.service_plane_dir.rglob("job-output.tar.gz"))
    assert not list(Path(archive.group(1)).glob("service-plane-job-output.tar.gz"))
