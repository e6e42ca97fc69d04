"""The provision role's versioned backups (tasks/backup.yml), run for real by ansible-playbook on this host.

Issue 12, item 15: a state is backed up only when it differs from the newest backup in what a
restore needs, at most provision_backup_keep are kept (the newest), and every SSH key pair and
deployment id is kept once per content, never overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: gpuops.platform.provision
        tasks_from: backup
      vars:
        __provision_state_read: {content: "%s"}
"""


class Deployment:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.ssh = self.state_dir / "local" / "ssh"
        self.ssh.mkdir(parents=True)
        self.backups = self.state_dir / "local" / "terraform" / "backups"

    def backup(self, state: dict, keep: int = 2) -> subprocess.CompletedProcess:
        play = self.root / "play.yml"
        play.write_text(PLAY % base64.b64encode(json.dumps(state).encode()).decode())
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        result = subprocess.run(
            [str(REPO / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(play),
             "-e", f"gpuops_state_dir={self.state_dir}", "-e", "gpuops_cloud=local",
             "-e", f"provision_backup_keep={keep}", "-e", f"ansible_python_interpreter={sys.executable}"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        return result

    def states(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.backups.glob("terraform.tfstate.*"))]


def state(serial: int, *pods: str, lineage: str = "lineage-1") -> dict:
    return {"version": 4, "serial": serial, "lineage": lineage,
            "resources": [{"type": "runpod_pod", "name": "pod", "instances": [{"index_key": p}]} for p in pods],
            "outputs": {"pods": {"value": {p: {"index": i} for i, p in enumerate(pods)}}}}


@pytest.fixture
def dep(tmp_path) -> Deployment:
    return Deployment(tmp_path)


def test_a_state_is_kept_once_per_content_and_only_the_newest_are_kept(dep):
    dep.backup(state(1, "gpuops-0"))
    assert [s["serial"] for s in dep.states()] == [1]
    # A run that changes nothing (Terraform still raises the serial): no new backup.
    dep.backup(state(2, "gpuops-0"))
    assert [s["serial"] for s in dep.states()] == [1]
    # Three changes with provision_backup_keep=2: the two newest are kept.
    for serial, pods in ((3, ("gpuops-0", "gpuops-1")), (4, ("gpuops-1",)), (5, ())):
        dep.backup(state(serial, *pods))
    assert [s["serial"] for s in dep.states()] == [4, 5]
    # A state of another lineage (a new deployment in the same place) is kept too.
    dep.backup(state(1, "gpuops-0", lineage="lineage-2"))
    assert [(s["lineage"], s["serial"]) for s in dep.states()] == [("lineage-1", 5), ("lineage-2", 1)]
    assert stat.S_IMODE(dep.backups.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in dep.backups.glob("terraform.tfstate.*"))


def test_every_key_pair_is_kept_and_never_overwritten(dep):
    key, pub = dep.ssh / "id_ed25519", dep.ssh / "id_ed25519.pub"
    key.write_text("first private key\n")
    pub.write_text("first public key\n")
    dep.backup(state(1, "gpuops-0"))
    first = hashlib.sha1(key.read_bytes()).hexdigest()[:12]
    # The key pair lost and made anew: the backup of the old one stays, the new one is added.
    key.write_text("second private key\n")
    pub.write_text("second public key\n")
    dep.backup(state(1, "gpuops-0"))
    second = hashlib.sha1(key.read_bytes()).hexdigest()[:12]
    kept = dep.backups / "ssh"
    assert (kept / f"id_ed25519.{first}").read_text() == "first private key\n"
    assert (kept / f"id_ed25519.{first}.pub").read_text() == "first public key\n"
    assert (kept / f"id_ed25519.{second}").read_text() == "second private key\n"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept.iterdir())


def test_keeping_no_backup_is_refused(dep, tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(PLAY % base64.b64encode(json.dumps(state(1, "gpuops-0")).encode()).decode())
    result = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", "localhost,", str(play),
         "-e", f"gpuops_state_dir={dep.state_dir}", "-e", "gpuops_cloud=local", "-e", "provision_backup_keep=0",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "provision_backup_keep is 0: keep at least 1 backup of the Terraform state." in result.stdout
    assert not dep.backups.exists()
