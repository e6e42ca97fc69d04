"""The repository's conftest.py: under make test (GPUOPS_NO_SKIP=1) a skipped test fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SAMPLE = '''
import pytest

@pytest.mark.skipif(True, reason="needs a Docker engine")
def test_marked():
    pass

def test_at_runtime():
    pytest.skip("image missing")

def test_passes():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''


def run(tmp_path: Path, no_skip: str | None) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "GPUOPS_NO_SKIP"}
    if no_skip is not None:
        env["GPUOPS_NO_SKIP"] = no_skip
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "test_sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_skips_fail_when_forbidden(tmp_path):
    result = run(tmp_path, "1")
    assert result.returncode != 0
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout, result.stdout
    assert "test_sample.py::test_at_runtime was skipped (Skipped: image missing)" in result.stdout
    assert "needs a Docker engine" in result.stdout


def test_skips_stay_skips_otherwise(tmp_path):
    result = run(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout, result.stdout


def test_make_test_forbids_skips():
    assert "test: export GPUOPS_NO_SKIP = 1" in (REPO / "Makefile").read_text()
