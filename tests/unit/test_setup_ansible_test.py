"""scripts/setup.sh's ansible_test step: ansible-test's pip bootstrap script (issue 13, item 21).

The step runs for real against the repository's ansible-test installs, with a
throw-away HOME and a `curl` on PATH that either fails (the address is
unreachable, as on these machines) or serves a file (as where it is reachable).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "scripts" / "setup.sh"
MARK = "# gpuops stand-in for ansible-test's pip bootstrap script"
REAL = "# the real get-pip script, as the fake curl serves it\n"


def run_step(home: Path, bin_dir: Path, curl: str) -> subprocess.CompletedProcess:
    (bin_dir / "curl").write_text(curl)
    (bin_dir / "curl").chmod(0o755)
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(SETUP), "ansible_test"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


UNREACHABLE = "#!/bin/sh\necho called >> \"$HOME/curl-calls\"\nexit 6\n"
# Writes REAL to the -o file, and records the address it was given.
REACHABLE = """#!/bin/sh
echo called >> "$HOME/curl-calls"
out=""; url=""
while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2 ;; -*) shift ;; *) url=$1; shift ;; esac; done
echo "$url" >> "$HOME/curl-urls"
printf '%s' '""" + REAL + """' > "$out"
"""


@pytest.fixture
def env(tmp_path):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    return home, bin_dir


def cached(home: Path) -> list[Path]:
    return sorted((home / ".ansible" / "test" / "cache").glob("get_pip_*.py"))


def test_unreachable_caches_a_marked_stand_in_then_the_real_script_replaces_it(env):
    home, bin_dir = env
    first = run_step(home, bin_dir, UNREACHABLE)
    assert first.returncode == 0, first.stderr
    scripts = cached(home)
    assert scripts, first.stdout
    assert all(path.read_text().splitlines()[0] == MARK for path in scripts)
    assert "unreachable, cached a stand-in" in first.stdout
    # Still unreachable: the stand-in stays, and the download was tried again.
    calls = (home / "curl-calls").read_text().count("called")
    again = run_step(home, bin_dir, UNREACHABLE)
    assert again.returncode == 0 and "the stand-in cached at" in again.stdout
    assert (home / "curl-calls").read_text().count("called") > calls
    # Reachable now: the real script replaces the stand-in.
    real = run_step(home, bin_dir, REACHABLE)
    assert real.returncode == 0, real.stderr
    assert all(path.read_text() == REAL for path in cached(home))
    # The address is ansible-test's own (read from its code, not written in setup.sh).
    urls = (home / "curl-urls").read_text().split()
    assert urls and all(re.fullmatch(r"https://\S+/get-pip-\d+\.\d+(\.\d+)?\.py", url) for url in urls), urls
    assert not any(url.split("/")[2] in SETUP.read_text() for url in urls)


def test_a_real_script_is_kept_without_a_download(env):
    home, bin_dir = env
    assert run_step(home, bin_dir, REACHABLE).returncode == 0
    (home / "curl-calls").unlink()
    kept = run_step(home, bin_dir, UNREACHABLE)
    assert kept.returncode == 0
    assert not (home / "curl-calls").exists()
    assert all(path.read_text() == REAL for path in cached(home))
    assert "bootstrap script cached at" in kept.stdout
