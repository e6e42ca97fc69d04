# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The deployment's lock: one per state directory and cloud (<gpuops_state_dir>/<gpuops_cloud>/lock).

An flock(2) on the lock file, taken by the ansible-playbook process itself (the
callback plugin gpuops.platform.deployment_lock, which runs in that process), so
that it is held for the whole run and released by the kernel when the process
ends, however it ends (kill -9 included). Exclusive for the runs that change the
deployment, shared for the ones that only use it (submit_job.yml).

Each holder also describes itself (playbook, pid, user, host, start time, mode)
in a file of its own under <lock>.holders/, which it keeps flocked for as long
as it runs: a description whose file is not locked any more belongs to a run
that is gone and is removed by the next reader. One file per holder, because a
shared lock has several holders at once.

Controller side only. Private to the collection: the interface may change
without notice.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import time

MODES = ("shared", "exclusive")
# What this process holds, set by take(): {"path", "mode", "started", "pid", ...}. Ansible's workers are forks
# of the process that took the lock, so the action plugin gpuops.platform.deployment_lock reads it there. The
# forks close their copies of the lock's descriptors: the lock lives exactly as long as the process that took it.
HELD = None
_FDS = []
_AT_EXIT = set()
_OWN_DESCRIPTION = None
_MAX_DESCRIPTION = 4096


class LockBusy(Exception):
    """The lock is held by other runs; holders lists their descriptions."""

    def __init__(self, holders):
        super().__init__("the deployment's lock is held by another run")
        self.holders = holders


def stronger(a, b):
    """The stronger of two modes."""
    return "exclusive" if "exclusive" in (a, b) else "shared"


def holders_dir(path):
    return path + ".holders"


def _clean(text, limit=200):
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text[:limit]


def describe(holder):
    """One line for a holder's description (a dict read from its file)."""
    if not isinstance(holder, dict):
        return "another run (its description cannot be read)"
    words = "%s (pid %s, user %s on %s, since %s, %s" % tuple(
        _clean(holder.get(key, "?")) for key in ("playbook", "pid", "user", "host", "started", "mode"))
    if holder.get("awx_job_id"):
        words += ", AWX job %s" % _clean(holder["awx_job_id"], 40)
    return words + ")"


def holders(path):
    """The descriptions of the runs that hold the lock now (the stale ones of runs that are gone are removed)."""
    directory = holders_dir(path)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        file_path = os.path.join(directory, name)
        if _OWN_DESCRIPTION and os.path.abspath(file_path) == _OWN_DESCRIPTION:
            continue
        try:
            descriptor = os.open(file_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    continue
                # Locked by its run: that run is alive.
                try:
                    found.append(json.loads(os.read(descriptor, _MAX_DESCRIPTION).decode("utf-8", "replace")))
                except ValueError:
                    found.append(None)
            else:
                # Nobody holds it any more: the run that wrote it is gone (killed, crashed).
                try:
                    os.unlink(file_path)
                except OSError:
                    pass
        finally:
            os.close(descriptor)
    return found


def _same_file(descriptor, path):
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _describe_self(path, description):
    """Write this run's description under <lock>.holders/, locked for as long as this process (and its forks) live."""
    global _OWN_DESCRIPTION
    directory = holders_dir(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = "%s-%d-%d.json" % (_clean(description.get("host", "host"), 64).replace("/", "_"), os.getpid(),
                              time.time_ns())
    final = os.path.join(directory, name)
    temporary = os.path.join(directory, "." + name)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    # Locked before it appears under its final name, so that no reader ever takes it for a stale one.
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    os.write(descriptor, json.dumps(description, sort_keys=True).encode("utf-8")[:_MAX_DESCRIPTION])
    os.rename(temporary, final)
    _FDS.append(descriptor)
    _OWN_DESCRIPTION = os.path.abspath(final)


def take(path, mode, timeout, description, on_wait=None, clock=time.monotonic, sleep=time.sleep, poll=0.25):
    """Take the lock at path in mode, waiting at most timeout seconds; LockBusy when it stays held.

    description: this run's (playbook, pid, user, host, started, ...). on_wait(holders) is called once when the lock
    is busy at first. The lock is kept until this process and its forks end (or release() is called).
    """
    global HELD
    if mode not in MODES:
        raise ValueError("mode must be shared or exclusive, not %r" % (mode,))
    path = os.path.abspath(path)
    if HELD is not None:
        if HELD["path"] == path and stronger(HELD["mode"], mode) == HELD["mode"]:
            return HELD
        release()  # another deployment, or shared -> exclusive: take it anew
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    operation = fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH
    deadline = clock() + max(0.0, float(timeout))
    told = False
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
        except OSError as err:
            os.close(descriptor)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if clock() >= deadline:
                raise LockBusy(holders(path)) from None
            if not told and on_wait is not None:
                on_wait(holders(path))
                told = True
            sleep(min(poll, max(0.0, deadline - clock())))
            continue
        # The file locked must still be the one at path (a run that removed the directory in between would
        # leave this lock on a file nobody else opens).
        if _same_file(descriptor, path):
            break
        os.close(descriptor)
    _FDS.append(descriptor)
    if os.getpid() not in _AT_EXIT:
        _AT_EXIT.add(os.getpid())
        atexit.register(_release_at_exit, os.getpid())
        os.register_at_fork(after_in_child=_forget_in_child)
    holders(path)  # removes the descriptions of runs that are gone
    description = dict(description, mode=mode)
    _describe_self(path, description)
    HELD = dict(description, path=path)
    return HELD


def _forget_in_child():
    """In a fork (an Ansible worker): close this copy of the lock, so that it lives exactly as long as the process
    that took it. HELD stays, for the action plugin to see what its run holds."""
    while _FDS:
        try:
            os.close(_FDS.pop())
        except OSError:
            pass


def _release_at_exit(owner):
    # Forks (Ansible's workers) end with os._exit and never get here; the check is for any other fork.
    if os.getpid() == owner:
        release()


def release():
    """Give the lock back now (it is given back anyway when the process ends)."""
    global HELD, _OWN_DESCRIPTION
    if _OWN_DESCRIPTION:
        try:
            os.unlink(_OWN_DESCRIPTION)
        except OSError:
            pass
    while _FDS:
        try:
            os.close(_FDS.pop())
        except OSError:
            pass
    HELD = None
    _OWN_DESCRIPTION = None
