"""The repository's conftest.py: under make test and CI (GPUOPS_NO_SKIP=1, or CI=true) any skip fails the run.

Each case runs pytest in a subprocess on a small test directory with a copy
of the repository's conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SAMPLE = '''
import pytest

@pytest.mark.skipif(True, reason="needs a Docker engine")
def test_marked():
    pass

def test_at_runtime():
    pytest.skip("image missing")

@pytest.fixture
def engine():
    pytest.skip("no engine in the fixture")

def test_fixture_skips(engine):
    pass

def test_passes():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''

MODULE_SKIP = '''
import pytest

pytest.skip("whole module: no terraform binary", allow_module_level=True)

def test_never_collected():
    pass
'''

PASSING = '''
def test_passes():
    pass
'''


def run(tmp_path: Path, env_set: dict[str, str], files: dict[str, str]) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "conftest.py", tmp_path / "conftest.py")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("GPUOPS_NO_SKIP", "CI")}
    env.update(env_set, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")  # the venv's plugins: not needed, and slow to load
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", "-o", "addopts=",
                           *sorted(files)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env", [{"GPUOPS_NO_SKIP": "1"}, {"CI": "true", "GPUOPS_NO_SKIP": "0"}],
                         ids=["GPUOPS_NO_SKIP=1", "CI=true"])
def test_skips_fail_when_forbidden(tmp_path, env):
    result = run(tmp_path, env, {"test_sample.py": SAMPLE, "test_module.py": MODULE_SKIP})
    assert result.returncode == 1, result.stdout
    # The runtime skip fails; the skips in setup (mark, fixture) are errors; the module skip fails the run.
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 2 errors" in result.stdout, result.stdout
    assert "test_sample.py::test_at_runtime was skipped (image missing), and this run forbids skips" in result.stdout
    # The closing section names every skipped test with its reason.
    assert "skips are failures in this run" in result.stdout
    closing = result.stdout.split("skips are failures in this run")[1].split("short test summary info")[0]
    for line in ("SKIPPED test_module.py: whole module: no terraform binary",
                 "SKIPPED test_sample.py::test_marked: needs a Docker engine",
                 "SKIPPED test_sample.py::test_at_runtime: image missing",
                 "SKIPPED test_sample.py::test_fixture_skips: no engine in the fixture",
                 "4 skipped: install what they need"):
        assert line in closing, (line, result.stdout)
    assert "test_expected_failure" not in closing and "test_passes" not in closing


def test_a_module_skipped_at_collection_fails_a_run_with_nothing_else(tmp_path):
    result = run(tmp_path, {"GPUOPS_NO_SKIP": "1"}, {"test_module.py": MODULE_SKIP})
    assert result.returncode == 1, result.stdout  # not pytest's 5, "no tests collected"
    assert "SKIPPED test_module.py: whole module: no terraform binary" in result.stdout, result.stdout


@pytest.mark.parametrize("env", [{}, {"GPUOPS_NO_SKIP": "0", "CI": "false"}], ids=["unset", "CI=false"])
def test_skips_stay_skips_otherwise(tmp_path, env):
    result = run(tmp_path, env, {"test_sample.py": SAMPLE, "test_module.py": MODULE_SKIP})
    assert result.returncode == 0, result.stdout
    assert "1 passed, 4 skipped, 1 xfailed" in result.stdout, result.stdout
    assert "skips are failures" not in result.stdout


def test_a_run_without_skips_passes_when_forbidden(tmp_path):
    result = run(tmp_path, {"GPUOPS_NO_SKIP": "1"}, {"test_ok.py": PASSING})
    assert result.returncode == 0, result.stdout
    assert "skips are failures" not in result.stdout


def test_ci_and_make_test_forbid_skips():
    # The README's test command is make test, which exports it to every pytest it runs (make's target-specific
    # export reaches the prerequisites test-unit and test-integration); CI's entry point sets it as well.
    assert "scripts/setup.sh && make test" in (REPO / "README.md").read_text()
    assert "test: export GPUOPS_NO_SKIP = 1" in (REPO / "Makefile").read_text()
    ci = (REPO / ".ci/run").read_text()
    assert "export GPUOPS_NO_SKIP=1" in ci and "make test" in ci
