# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The deployment lock's logic, with real flock(2) between real processes (a forked child holds the lock)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from ansible_collections.gpuops.platform.plugins.plugin_utils import _deployment_lock as lock


def _holder(path, mode):
    """A child process that takes the lock and holds it until killed; returns its pid once it holds it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            lock.take(str(path), mode, 0, {"playbook": "child.yml", "pid": os.getpid(), "user": "u", "host": "h",
                                           "started": "2026-01-01T00:00:00Z"})
            os.write(write, b"x")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"x"
    os.close(read)
    return pid


def _end(pid):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@pytest.fixture(autouse=True)
def _released():
    yield
    lock.release()


def test_exclusive_excludes_both_modes_and_names_the_holder(tmp_path):
    path = tmp_path / "cloud" / "lock"
    pid = _holder(path, "exclusive")
    try:
        for mode in lock.MODES:
            waited = []
            start = time.monotonic()
            with pytest.raises(lock.LockBusy) as busy:
                lock.take(str(path), mode, 0.5, {"playbook": "me.yml"}, on_wait=waited.append)
            assert time.monotonic() - start >= 0.5
            assert [h["pid"] for h in busy.value.holders] == [pid]
            assert waited and waited[0][0]["playbook"] == "child.yml"
            assert lock.describe(busy.value.holders[0]) == \
                "child.yml (pid %d, user u on h, since 2026-01-01T00:00:00Z, exclusive)" % pid
    finally:
        _end(pid)
    assert oct(os.stat(path.parent).st_mode & 0o777) == "0o700"


def test_shared_with_shared_and_stale_descriptions_are_removed(tmp_path):
    path = tmp_path / "lock"
    pid = _holder(path, "shared")
    held = lock.take(str(path), "shared", 0, {"playbook": "me.yml"})
    assert held["mode"] == "shared" and held["path"] == str(path)
    lock.release()
    _end(pid)  # killed: its description stays, unlocked
    assert len(list((tmp_path / "lock.holders").glob("*.json"))) == 1
    lock.take(str(path), "exclusive", 0, {"playbook": "me.yml"})
    (own,) = (tmp_path / "lock.holders").glob("*.json")
    assert json.loads(own.read_text())["playbook"] == "me.yml"


def test_a_fork_does_not_keep_the_lock_alive(tmp_path):
    path = tmp_path / "lock"
    lock.take(str(path), "exclusive", 0, {"playbook": "me.yml"})
    child = os.fork()
    if child == 0:  # pragma: no cover - the child: it sees what its parent holds, and holds nothing itself
        os._exit(0 if lock.HELD and lock.HELD["mode"] == "exclusive" and not lock._FDS else 1)
    assert os.waitpid(child, 0)[1] == 0
    lock.release()
    lock.take(str(path), "exclusive", 0, {"playbook": "again.yml"})


def test_bad_mode():
    with pytest.raises(ValueError):
        lock.take("/nonexistent/lock", "write", 0, {})
