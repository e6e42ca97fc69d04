"""The Slurm prolog and epilog that map jobs to GPUs (templates/slurm-gpu-jobs.sh.j2).

Rendered as the role renders them, then run with /bin/sh and the environment
slurmd gives them. They must never fail: a failing prolog drains the node.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import jinja2
import pytest

from gpu_exporter_helpers import ROLE


def render(tmp_path: Path, hook: str, mapping_dir: str = "") -> Path:
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    template = env.from_string((ROLE / "templates/slurm-gpu-jobs.sh.j2").read_text())
    script = tmp_path / hook
    script.write_text(template.render(
        ansible_managed="Ansible managed",
        _dcgm_exporter_hook=hook,
        dcgm_exporter_hpc_job_mapping_dir=mapping_dir or str(tmp_path / "mapping dir"),
        _dcgm_exporter_index_map=str(tmp_path / "gpu-index-map"),
    ))
    script.chmod(0o755)
    return script


@pytest.fixture
def hooks(tmp_path):
    return render(tmp_path, "prolog"), render(tmp_path, "epilog"), tmp_path / "mapping dir"


def run(script: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(["/bin/sh", str(script)], env=environ, capture_output=True, text=True, timeout=20, check=False)


def mapping(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())} if directory.exists() else {}


def test_prolog_writes_the_job_id_for_each_gpu_and_epilog_removes_it(hooks):
    prolog, epilog, directory = hooks
    assert run(prolog, SLURM_JOB_ID="17", SLURM_JOB_GPUS="0,2").returncode == 0
    assert mapping(directory) == {"0": "17\n", "2": "17\n"}
    assert oct((directory / "0").stat().st_mode & 0o777) == "0o644"
    assert run(epilog, SLURM_JOB_ID="17", SLURM_JOB_GPUS="0,2").returncode == 0
    assert mapping(directory) == {}


def test_prolog_falls_back_to_the_step_and_cuda_variables(hooks):
    prolog, _epilog, directory = hooks
    run(prolog, SLURM_JOB_ID="5", SLURM_STEP_GPUS="1")
    run(prolog, SLURM_JOB_ID="6", CUDA_VISIBLE_DEVICES="3")
    assert mapping(directory) == {"1": "5\n", "3": "6\n"}


def test_epilog_leaves_the_gpus_of_other_jobs(hooks):
    prolog, epilog, directory = hooks
    run(prolog, SLURM_JOB_ID="1", SLURM_JOB_GPUS="0")
    run(prolog, SLURM_JOB_ID="2", SLURM_JOB_GPUS="1")
    # A late epilog of job 1 after job 3 took GPU 0 must not forget job 3.
    run(prolog, SLURM_JOB_ID="3", SLURM_JOB_GPUS="0")
    assert run(epilog, SLURM_JOB_ID="1").returncode == 0
    assert mapping(directory) == {"0": "3\n", "1": "2\n"}


def test_device_numbers_are_translated_to_gpu_indexes(hooks, tmp_path):
    prolog, _epilog, directory = hooks
    # A container whose GPUs are the host's /dev/nvidia3 and /dev/nvidia5.
    (tmp_path / "gpu-index-map").write_text("# comment\n3 0\n5 1\n")
    run(prolog, SLURM_JOB_ID="9", SLURM_JOB_GPUS="5")
    assert mapping(directory) == {"1": "9\n"}


@pytest.mark.parametrize("env", [
    {},                                              # not a job
    {"SLURM_JOB_ID": "4"},                           # a job without GPUs
    {"SLURM_JOB_ID": "4", "SLURM_JOB_GPUS": "NoDevFiles"},
    {"SLURM_JOB_ID": "4", "SLURM_JOB_GPUS": ",,"},
])
def test_prolog_does_nothing_without_gpus(hooks, env):
    prolog, _epilog, directory = hooks
    assert run(prolog, **env).returncode == 0
    assert mapping(directory) == {}


def test_hooks_never_fail_even_when_they_cannot_write(tmp_path):
    # Nobody, root included, can create a directory under /proc.
    prolog = render(tmp_path, "prolog", "/proc/gpuops-test/mapping")
    epilog = render(tmp_path, "epilog", "/proc/gpuops-test/mapping")
    assert run(prolog, SLURM_JOB_ID="8", SLURM_JOB_GPUS="0").returncode == 0
    assert run(epilog, SLURM_JOB_ID="8").returncode == 0


def test_hooks_never_fail_when_the_directory_is_a_file(hooks):
    prolog, epilog, directory = hooks
    directory.write_text("not a directory")
    assert run(prolog, SLURM_JOB_ID="8", SLURM_JOB_GPUS="0").returncode == 0
    assert run(epilog, SLURM_JOB_ID="8").returncode == 0


def test_the_epilog_without_a_mapping_directory_succeeds(hooks):
    _prolog, epilog, directory = hooks
    assert not directory.exists()
    assert run(epilog, SLURM_JOB_ID="8").returncode == 0
