"""Under AWX (awx_job_id set) the provision role refuses a state directory that would not outlive the job.

Real playbook runs (playbooks/provision.yml, the local cloud's play skipped), with a temporary state directory on
the machine's root filesystem (what an execution environment container's own filesystem is), one on a tmpfs mount
(/dev/shm: memory only, gone with the job's container) and one on a bind mount of a disk directory (what a
persistent volume is), with and without a Terraform backend. No Docker, no pod.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.integration.helpers import Deployment

pytestmark = [pytest.mark.integration]

MESSAGE = "not on a persistent volume"


def _mount_point(path: Path) -> str:
    return subprocess.run(["findmnt", "-n", "-o", "TARGET", "-T", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[-1]


def _provision(dep: Deployment, *args: str) -> subprocess.CompletedProcess:
    # No local cloud (its play is skipped): whatever passes the check stops at the API probe, before any change.
    return dep.playbook("provision.yml", "--skip-tags", "localcloud", "-e", "awx_job_id=1", *args, check=False)


def _created(state: Path) -> list[str]:
    """What the run left in the state directory, besides the deployment lock's files."""
    return sorted(str(p.relative_to(state)) for p in state.rglob("*") if not p.name.startswith("lock")
                  and p.is_file()) if state.exists() else []


@pytest.fixture
def root_fs_dir():
    # Not under /dev/shm or another mount: on the root filesystem.
    path = Path(tempfile.mkdtemp(prefix="gpuops-awx-", dir="/var/tmp"))
    assert _mount_point(path) == "/", f"{path} should be on the root filesystem for this test"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def tmpfs_dir():
    assert _mount_point(Path("/dev/shm")) == "/dev/shm", "/dev/shm is not a mount point here"
    path = Path(tempfile.mkdtemp(prefix="gpuops-awx-", dir="/dev/shm"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mounted_dir():
    """A directory on disk bind-mounted at a mount point of its own, as a persistent volume is in a job."""
    source = Path(tempfile.mkdtemp(prefix="gpuops-awx-volume-", dir="/var/tmp"))
    target = Path(tempfile.mkdtemp(prefix="gpuops-awx-mnt-", dir="/var/tmp"))
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True, capture_output=True, text=True)
    try:
        assert _mount_point(target) == str(target)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def test_a_state_dir_on_the_containers_own_filesystem_is_refused_before_anything_is_created(root_fs_dir):
    dep = Deployment(root_fs_dir / "run")
    result = _provision(dep)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert f"This AWX job keeps the deployment's state in {dep.state_dir} (gpuops_state_dir)" in out, result.stdout[-3000:]
    assert MESSAGE in out and "provision_terraform_backend" in out and "Nothing was created." in out
    assert _created(dep.state_dir) == []


def test_a_state_dir_on_a_tmpfs_is_refused(tmpfs_dir):
    """A tmpfs is a mount point of its own, but memory only: gone with the job's container."""
    dep = Deployment(tmpfs_dir / "run")
    result = _provision(dep)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "which is on a tmpfs (memory only) (mount point '/dev/shm')" in out, result.stdout[-3000:]
    assert MESSAGE in out and "Nothing was created." in out
    assert _created(dep.state_dir) == []


def test_a_state_dir_on_a_mount_point_passes_the_check(mounted_dir):
    dep = Deployment(mounted_dir / "run")
    result = _provision(dep)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0  # no local cloud: the API probe stops it, after the check
    assert MESSAGE not in out
    assert "is unreachable" in out, result.stdout[-3000:]


def test_a_configured_backend_passes_the_check_on_any_filesystem(root_fs_dir):
    dep = Deployment(root_fs_dir / "run")
    backend = '{"provision_terraform_backend": {"type": "pg", "config": {"conn_str": "postgres://127.0.0.1:1/x"}}}'
    result = _provision(dep, "-e", backend)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert MESSAGE not in out
    assert "is unreachable" in out, result.stdout[-3000:]


def test_outside_awx_the_check_does_not_run(root_fs_dir):
    dep = Deployment(root_fs_dir / "run")
    result = dep.playbook("provision.yml", "--skip-tags", "localcloud", check=False)
    out = " ".join(result.stdout.split())
    assert MESSAGE not in out
    assert "is unreachable" in out, result.stdout[-3000:]
