"""submit_job.yml on this machine only (issue 12, item 18): no Docker, no pod.

The inventory is a deployment of its own (a temp state directory) with a compute
host that cannot be reached and a service plane that is not there, so that the
job request is checked for real (gpuops.platform.job_request) and a later play
fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, VENV_BIN, Deployment, free_port

pytestmark = [pytest.mark.integration]

MARKER = "gpuops-item18-marker-7f3a"


@pytest.fixture
def dep(tmp_path):
    d = Deployment(tmp_path / "deploy", prefix="gpuopsitem18")
    d.use_service_plane()
    # A compute node nobody answers for: the request is checked against one node, one GPU.
    (d.inventory / "compute.yml").write_text(json.dumps({"all": {"children": {"slurm_compute": {"hosts": {"n1": {
        "ansible_host": "127.0.0.1", "ansible_port": free_port(), "runpod_gpu_count": 1,
        "runpod_global_networking": {"enabled": False}}}}}}}))
    return d


def _submit(dep, cwd: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **(env or {}))
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(dep.inventory), str(REPO / "submit_job.yml"), *dep.extra,
         "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}", "-e", "ansible_ssh_common_args=''",
         *extra],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=300, check=False)


def test_a_relative_script_path_starts_at_the_callers_directory_as_the_message_says(dep, tmp_path):
    """README.md exists in the playbook's directory (the repository) but not in the caller's: it must be looked
    for (and named) in the caller's directory only. Resolving against the playbook's directory would accept it."""
    caller = tmp_path / "caller"
    caller.mkdir()
    result = _submit(dep, caller, "-e", "script=README.md")
    assert result.returncode != 0
    assert ("There is no file README.md (%s/README.md) (a relative path starts at %s). Nothing was submitted."
            % (caller, caller)) in result.stdout, result.stdout[-3000:]

    (caller / "job.sh").write_text("#!/bin/sh\necho hi\n")
    result = _submit(dep, caller, "-e", "script=job.sh")
    # Accepted; the run fails later, at the controller nobody runs.
    assert "TASK [Check the job request]" in result.stdout
    assert "There is no file" not in result.stdout, result.stdout[-3000:]
    assert "TASK [Submit the script to Slurm]" in result.stdout


def test_no_copy_of_a_script_text_is_left_when_a_later_play_fails(dep, tmp_path):
    """The script given as text (as AWX sends it) is never written to a temporary directory of this machine: a
    run that fails after the request was accepted leaves no copy in TMPDIR or Ansible's temporary directories."""
    temp = {name: tmp_path / name for name in ("tmpdir", "local_tmp", "remote_tmp")}
    for path in temp.values():
        path.mkdir()
    text = "#!/bin/bash\necho %s\n" % MARKER
    result = _submit(dep, tmp_path, "-e", json.dumps({"script": text}),
                     env={"TMPDIR": str(temp["tmpdir"]), "ANSIBLE_LOCAL_TEMP": str(temp["local_tmp"]),
                          "ANSIBLE_REMOTE_TEMP": str(temp["remote_tmp"])})
    out = result.stdout
    assert result.returncode != 0
    assert "TASK [Check the job request]" in out and "ok: [localhost]" in out, out[-3000:]
    assert "TASK [Submit the script to Slurm]" in out  # the later play, which fails: no controller runs
    assert "unreachable=1" in out or "failed=1" in out
    left = [p for root in [*temp.values(), dep.state_dir] for p in root.rglob("*")
            if p.is_file() and MARKER in p.read_text(errors="replace")]
    assert not left, left
    assert not [p for p in temp["tmpdir"].iterdir() if p.name.startswith("gpuops-submit-")]


@pytest.mark.parametrize(("extra", "message"), [
    (("-e", "gpus=1"), "gpus is not an input of a job request: it was read as GPUs for the whole job here and as "
                       "GPUs per node elsewhere. Ask for gpus_per_node=N instead"),
    (("-e", "gpus_per_node=2"), "Impossible request: gpus_per_node=2 with nodes=1 is 2 GPU(s) on each of 1 node(s), "
                                "2 in all. This cluster's nodes have GPUs: 1, so a job on 1 node(s) can have at most "
                                "1 GPU(s) per node: ask for gpus_per_node 0 to 1. Nothing was submitted."),
])
def test_gpus_are_asked_for_per_node_by_that_name(dep, tmp_path, extra, message):
    """submit_job.yml hands job_request each node's GPUs (one node with one GPU here)."""
    (tmp_path / "job.sh").write_text("#!/bin/sh\necho hi\n")
    result = _submit(dep, tmp_path, "-e", "script=job.sh", *extra)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert "TASK [Submit the script to Slurm]" not in result.stdout
