"""The integration tests run side by side (make test-integration: pytest-xdist, --dist loadscope).

The repository's conftest.py gives each worker whole scopes (a test file, or tests/integration/site, whose files
share one deployment), the longest first, and a Docker network of its own for its local clouds; the helpers give
each worker ports no other worker picks. Each case runs pytest with xdist in a subprocess on a small tree with a
copy of the repository's conftest.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RECORDER = '''
import json, os, pathlib

def test_{name}():
    record = {{"test": "{path}::test_{name}", "worker": os.environ["PYTEST_XDIST_WORKER"],
              "network": os.environ.get("GPUOPS_LOCALCLOUD_NETWORK")}}
    with open(os.environ["RECORD"], "a") as handle:
        handle.write(json.dumps(record) + "\\n")
'''


def tree(root: Path, files: dict[str, list[str]]) -> None:
    shutil.copy(REPO / "conftest.py", root / "conftest.py")
    (root / "pytest.ini").write_text("[pytest]\n")
    for path, names in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        for parent in target.relative_to(root).parents:
            if str(parent) != ".":
                (root / parent / "__init__.py").touch()
        target.write_text("".join(RECORDER.format(name=name, path=path) for name in names))


def run_side_by_side(root: Path, workers: int) -> list[dict]:
    record = root / "record.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("GPUOPS_LOCALCLOUD_NETWORK", "PYTEST_XDIST_WORKER")}
    env["RECORD"] = str(record)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-n", str(workers), "--dist", "loadscope",
         "--no-loadscope-reorder", "-q", "tests"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_a_shared_package_runs_whole_on_one_worker_in_file_order_and_files_stay_whole(tmp_path):
    tree(tmp_path, {
        "tests/integration/site/test_1_first.py": ["a", "b"],
        "tests/integration/site/test_2_second.py": ["c", "d"],
        "tests/integration/site/test_3_third.py": ["e", "f"],
        "tests/integration/test_alpha.py": ["g", "h", "i"],
        "tests/integration/test_beta.py": ["j", "k", "l"],
        "tests/browser/test_gamma.py": ["m", "n", "o"],
    })
    records = run_side_by_side(tmp_path, 3)
    assert len(records) == 15
    by_worker: dict[str, list[str]] = {}
    for record in records:
        by_worker.setdefault(record["worker"], []).append(record["test"])
    assert len(by_worker) > 1, by_worker  # it did run side by side
    site_workers = {r["worker"] for r in records if r["test"].startswith("tests/integration/site/")}
    assert len(site_workers) == 1, by_worker
    site_order = [t for t in by_worker[site_workers.pop()] if t.startswith("tests/integration/site/")]
    assert [t.rsplit("_", 1)[1] for t in site_order] == list("abcdef")
    for path in ("tests/integration/test_alpha.py", "tests/integration/test_beta.py", "tests/browser/test_gamma.py"):
        assert len({r["worker"] for r in records if r["test"].startswith(path)}) == 1, (path, by_worker)


def test_each_worker_has_a_docker_network_of_its_own_for_its_local_clouds(tmp_path):
    tree(tmp_path, {f"tests/integration/test_{name}.py": [name] for name in "abcdef"})
    records = run_side_by_side(tmp_path, 2)
    assert {r["network"] for r in records} == {f"gpuops-localcloud-{r['worker']}" for r in records}
    assert len({r["network"] for r in records}) == 2


def test_the_longest_scopes_named_first_exist():
    # A renamed or removed file would silently lose its place at the front. (The repository's conftest.py by its
    # path: under pytest other conftest modules may hold the name.)
    spec = importlib.util.spec_from_file_location("gpuops_root_conftest", REPO / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    for scope in conftest._LONGEST_FIRST:
        assert (REPO / scope).exists(), scope
    assert conftest._LONGEST_FIRST[0] == "tests/integration/site/"


@pytest.mark.parametrize("worker", [0, 1, 2])
def test_workers_pick_ports_no_other_worker_picks(monkeypatch, worker):
    from tests.integration import helpers

    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    for _ in range(20):
        port = helpers.free_port()
        assert (port // helpers.PORT_SLICE) % 3 == worker, port
        assert port not in helpers.LOCALCLOUD_HOST_PORTS, port
        base = helpers.free_port_block(8)
        assert {(p // helpers.PORT_SLICE) % 3 for p in range(base, base + 8)} == {worker}, base
        assert base % 2 == 0
