"""One lock per deployment (issue 12, item 14): real ansible-playbook runs at the same time.

Each test runs real playbooks on localhost: a holder that imports the same lock
(playbooks/lock.yml, taken by the callback gpuops.platform.deployment_lock
enabled in ansible.cfg) and then waits for a file, and the entry playbooks
submit_job.yml and teardown.yml on an empty deployment of their own (a temp
state directory). No Docker, no pod.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, VENV_BIN, Deployment

pytestmark = [pytest.mark.integration]

HOLD = """\
- name: The deployment's lock
  ansible.builtin.import_playbook: {lock}
  vars:
    gpuops_lock_mode: "{{{{ hold_mode }}}}"

- name: Hold it until told
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Say that this run got past the lock
      ansible.builtin.file:
        path: "{{{{ hold_marker }}}}.started"
        state: touch
        mode: "0600"

    - name: Wait to be released
      ansible.builtin.wait_for:
        path: "{{{{ hold_marker }}}}.release"
        timeout: 120
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env.update(extra)
    return env


class Runs:
    """Playbook runs of one deployment (a temp state dir), in the background or not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dep = Deployment(root / "deploy", prefix="gpuopslock")
        self.dep.use_service_plane()
        self.hold = root / "hold.yml"
        self.hold.write_text(HOLD.format(lock=REPO / "playbooks" / "lock.yml"))
        self.lock = self.dep.state_dir / "local" / "lock"
        self.procs: list[subprocess.Popen] = []

    def args(self, playbook: str | Path, *extra: str) -> list[str]:
        return [str(VENV_BIN / "ansible-playbook"), "-i", str(self.dep.inventory), str(playbook), *self.dep.extra,
                "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}", *extra]

    def holder(self, name: str, mode: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A run that takes the lock in mode and holds it until release(name)."""
        log = (self.root / f"{name}.log").open("w")
        proc = subprocess.Popen(
            self.args(self.hold, "-e", f"hold_mode={mode}", "-e", f"hold_marker={self.root / name}", *extra),
            cwd=REPO, env=env or _env(), stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def started(self, name: str) -> bool:
        return (self.root / f"{name}.started").exists()

    def wait_started(self, name: str, proc: subprocess.Popen, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.started(name):
            assert proc.poll() is None, f"{name} ended {proc.returncode}: {self.log(name)}"
            assert time.monotonic() < deadline, f"{name} never got past the lock: {self.log(name)}"
            time.sleep(0.2)

    def release(self, name: str) -> None:
        (self.root / f"{name}.release").touch()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()[-4000:]

    def run(self, playbook: str | Path, *extra: str, env: dict[str, str] | None = None):
        start = time.monotonic()
        result = subprocess.run(self.args(playbook, *extra), cwd=REPO, env=env or _env(), capture_output=True,
                                text=True, timeout=300, check=False)
        return result, time.monotonic() - start

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def runs(tmp_path):
    r = Runs(tmp_path)
    try:
        yield r
    finally:
        r.stop()


def _held_by(holder: subprocess.Popen) -> re.Pattern:
    """The holder's description in a refusal: "The deployment's lock <path> is held by <d>[; <d>...]"."""
    return re.compile(r"The deployment's lock \S+/local/lock is held by (\S+ \([^)]*\); )*\S*hold\.yml \(pid %d, user "
                      r"\S+ on \S+, since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, (shared|exclusive)\)" % holder.pid)


@pytest.mark.parametrize("second", ["exclusive", "shared"])
def test_an_exclusive_holder_makes_the_next_run_wait_then_stop_naming_it(runs, second):
    holder = runs.holder("first", "exclusive")
    runs.wait_started("first", holder)
    description = [json.loads(p.read_text()) for p in (runs.lock.parent / "lock.holders").glob("*.json")]
    assert [(d["pid"], d["mode"]) for d in description] == [(holder.pid, "exclusive")]

    result, took = runs.run(runs.hold, "-e", f"hold_mode={second}", "-e", f"hold_marker={runs.root / 'second'}",
                            "-e", "gpuops_lock_timeout=3")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert took >= 3, took
    assert _held_by(holder).search(out), out
    assert "waited 3 s for it and stopped before any play: nothing was changed" in out
    assert "gpuops_lock_timeout" in out
    assert not runs.started("second")  # none of its tasks ran
    assert "PLAY [" not in result.stdout

    runs.release("first")
    assert holder.wait(60) == 0, runs.log("first")


def test_shared_runs_run_together_and_an_exclusive_one_waits_for_both(runs):
    one = runs.holder("one", "shared")
    runs.wait_started("one", one)
    two = runs.holder("two", "shared")
    runs.wait_started("two", two)  # while one still holds it
    assert one.poll() is None

    result, _ = runs.run(runs.hold, "-e", "hold_mode=exclusive", "-e", f"hold_marker={runs.root / 'ex'}",
                         "-e", "gpuops_lock_timeout=1")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # Both holders are named.
    assert _held_by(one).search(out) and _held_by(two).search(out), out
    runs.release("one")
    runs.release("two")
    assert one.wait(60) == 0 and two.wait(60) == 0


def test_a_waiting_run_goes_on_when_the_holder_ends(runs):
    holder = runs.holder("first", "exclusive")
    runs.wait_started("first", holder)
    waiter = runs.holder("second", "exclusive", "-e", "gpuops_lock_timeout=60")
    time.sleep(4)
    assert not runs.started("second")  # it waits
    runs.release("first")
    assert holder.wait(60) == 0
    runs.wait_started("second", waiter)
    runs.release("second")
    assert waiter.wait(60) == 0
    log = runs.log("second")
    assert _held_by(holder).search(log) and "waits for it up to 60 s" in log, log
    assert "the inventory was read again" in log


@pytest.mark.parametrize("kill", ["playbook", "group"])
def test_a_killed_holder_leaves_no_stale_lock(runs, kill):
    """kill -9 of ansible-playbook alone, or of its whole process group (a cancelled job, an OOM kill): the lock is
    free at once, though the task its worker ran may still be ending (a worker is in a session of its own)."""
    holder = runs.holder("first", "exclusive")
    runs.wait_started("first", holder)
    if kill == "playbook":
        os.kill(holder.pid, signal.SIGKILL)
    else:
        os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    stale = list((runs.lock.parent / "lock.holders").glob("*.json"))
    assert stale  # its description was left behind...

    runs.release("second")  # past the lock, it need not wait
    result, took = runs.run(runs.hold, "-e", "hold_mode=exclusive", "-e", f"hold_marker={runs.root / 'second'}",
                            "-e", "gpuops_lock_timeout=0")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert runs.started("second") and "is held by" not in out, out
    assert not any(p.exists() for p in stale)  # ...and was recognised as stale and removed
    runs.release("first")  # the killed run's worker, still waiting, ends


def test_without_the_callback_the_lock_task_fails_the_run(runs):
    """ANSIBLE_CALLBACKS_ENABLED replaces ansible.cfg's list: the run must not go on unlocked."""
    result, _ = runs.run(runs.hold, "-e", "hold_mode=exclusive", "-e", f"hold_marker={runs.root / 'x'}",
                         env=_env(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks"))
    assert result.returncode == 2, result.stdout
    assert "This run does not hold the deployment's lock" in result.stdout
    assert "callbacks_enabled = gpuops.platform.deployment_lock" in result.stdout
    assert not runs.started("x")


def test_a_bad_timeout_is_refused_before_any_play(runs):
    result, _ = runs.run(runs.hold, "-e", "hold_mode=exclusive", "-e", f"hold_marker={runs.root / 'x'}",
                         "-e", "gpuops_lock_timeout=soon")
    assert result.returncode == 1
    assert "gpuops_lock_timeout (the deployment lock's timeout) must be whole seconds from 0 to 86400, not 'soon'" \
        in result.stderr
    assert not runs.started("x")


def test_entry_playbooks_take_the_lock(runs):
    """submit_job.yml (shared) runs beside a shared holder; teardown.yml (exclusive) and submit_job.yml beside an
    exclusive one are stopped before any play, naming the holder."""
    script = runs.root / "hello.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    submit = ("./submit_job.yml", "-e", json.dumps({"script": str(script)}), "-e", "gpuops_lock_timeout=2")

    shared = runs.holder("shared", "shared")
    runs.wait_started("shared", shared)
    result, _ = runs.run(*submit)
    assert result.returncode != 0
    assert "No cluster is deployed" in result.stdout, result.stdout[-3000:] + result.stderr
    assert "TASK [Check that this run holds the deployment's lock]" in result.stdout

    result, took = runs.run("./teardown.yml", "-e", "gpuops_lock_timeout=2")
    out = result.stdout + result.stderr
    assert result.returncode == 1 and took >= 2, out
    assert _held_by(shared).search(out), out
    assert "This run (teardown.yml, exclusive) waited 2 s" in out
    assert "PLAY [" not in result.stdout
    runs.release("shared")
    assert shared.wait(60) == 0

    exclusive = runs.holder("exclusive", "exclusive")
    runs.wait_started("exclusive", exclusive)
    result, _ = runs.run(*submit)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and _held_by(exclusive).search(out), out
    assert "This run (submit_job.yml, shared) waited 2 s" in out
    assert "No cluster is deployed" not in out
    # A stage playbook run alone takes it too.
    result, _ = runs.run("playbooks/stack.yml", "-e", "gpuops_lock_timeout=0")
    assert result.returncode == 1 and "This run (playbooks/stack.yml, exclusive) waited 0 s" in result.stderr
    runs.release("exclusive")
    assert exclusive.wait(60) == 0
