# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_lock
type: aggregate
short_description: Hold the deployment's lock for the whole ansible-playbook run
author:
  - gpuops maintainers (@gpuops)
description:
  - One lock per deployment (state directory and cloud), so that runs that change it never interleave
    (C(site.yml) and C(teardown.yml) take it exclusive) while runs that only use it do not stop each other
    (C(submit_job.yml) takes it shared).
  - When a playbook starts, this callback looks through all of its plays (imported ones included) for tasks of
    M(gpuops.platform.deployment_lock), renders their options for C(localhost), and takes the lock file they name
    with C(flock), exclusive when any of them asks for V(exclusive), else shared. It runs in the ansible-playbook
    process itself, before any play, whatever C(--tags), C(--limit) or check mode, so the lock is held for the
    whole run and released by the kernel when that process ends, however it ends (C(kill -9) included).
  - A run that finds the lock held waits for it up to the tasks' O(gpuops.platform.deployment_lock#module:timeout)
    seconds, then stops before any play with a message that names the run that holds it (its playbook, pid, user,
    host and start time, which each holder writes in its own file under C(<lock>.holders/)) and says what to do.
  - When it had to wait, it reads the inventory again before the first play, since the run it waited for may have
    created or destroyed pods.
  - Playbooks without such a task are not locked.
requirements:
  - Enabled in C(callbacks_enabled) (the repository's C(ansible.cfg) does). The tasks of
    M(gpuops.platform.deployment_lock) fail when this callback is not enabled.
  - A file system with C(flock) (a local disk; under AWX the persistent volume of the state directory).
version_added: 0.1.0
"""

import getpass
import os
import socket
import time

from ansible.plugins.callback import CallbackBase
from ansible.template import Templar
from ansible.utils.display import Display
from ansible_collections.gpuops.platform.plugins.plugin_utils import _deployment_lock as lock

display = Display()

ACTIONS = frozenset(("gpuops.platform.deployment_lock", "deployment_lock"))
MAX_TIMEOUT = 86400


class LockRefusal(Exception):
    """The lock cannot be taken; the message says why and what to do."""


def _tasks(blocks):
    for block in blocks or []:
        children = [getattr(block, name, None) for name in ("block", "rescue", "always")]
        if any(child is not None for child in children):
            for child in children:
                yield from _tasks(child)
        else:
            yield block


def _is_lock_task(task):
    return str(getattr(task, "resolved_action", None) or "") in ACTIONS or str(getattr(task, "action", "")) in ACTIONS


def _requests(playbook):
    """(play, task) for every lock task of the playbook's plays."""
    for play in playbook.get_plays():
        for task in _tasks(play.tasks):
            if _is_lock_task(task):
                yield play, task


def _text(value):
    return str.__str__(value) if isinstance(value, str) else value


def _render(play, task):
    """The task's options rendered for localhost: (mode, path, timeout)."""
    manager = play.get_variable_manager()
    inventory = getattr(manager, "_inventory", None)
    host = inventory.get_host("localhost") if inventory is not None else None
    variables = manager.get_vars(play=play, host=host, task=task)
    templar = Templar(loader=getattr(manager, "_loader", None) or play._loader, variables=variables)
    args = templar.template(dict(task.args))
    mode = _text(args.get("mode"))
    path = _text(args.get("path"))
    timeout = args.get("timeout", 60)
    if mode not in lock.MODES:
        raise LockRefusal("The task '%s' asks for the deployment's lock in mode %r: it must be shared or exclusive."
                          % (task.get_name(), mode))
    if not isinstance(path, str) or not path.strip():
        raise LockRefusal("The task '%s' names no lock file (path)." % task.get_name())
    try:
        timeout = int(str(timeout).strip())
    except ValueError:
        timeout = -1
    if not 0 <= timeout <= MAX_TIMEOUT:
        raise LockRefusal("gpuops_lock_timeout (the deployment lock's timeout) must be whole seconds from 0 to %d, "
                          "not '%s'." % (MAX_TIMEOUT, _text(args.get("timeout"))))
    return mode, os.path.abspath(os.path.expanduser(path.strip())), timeout


def _user():
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except  # no name for this uid: say the uid
        return str(os.getuid())


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "gpuops.platform.deployment_lock"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook):
        try:
            self._lock(playbook)
        except LockRefusal as refusal:
            display.error(str(refusal), wrap_text=False)
            raise SystemExit(1) from None
        except Exception as err:  # pylint: disable=broad-except  # never run on without the lock
            display.error("The deployment's lock could not be taken (%s: %s), so this run stops before any play. "
                          "Nothing was changed." % (type(err).__name__, err), wrap_text=False)
            raise SystemExit(1) from None

    def _lock(self, playbook):
        requests = [_render(play, task) + (play,) for play, task in _requests(playbook)]
        if not requests:
            return
        paths = sorted({request[1] for request in requests})
        if len(paths) > 1:
            raise LockRefusal("This playbook's plays name different deployment locks (%s): one run serves one "
                              "deployment. Nothing was changed." % ", ".join(paths))
        mode = "shared"
        for request in requests:
            mode = lock.stronger(mode, request[0])
        timeout = requests[0][2]
        manager = requests[0][3].get_variable_manager()
        extra = getattr(manager, "extra_vars", {}) or {}
        name = getattr(playbook, "_file_name", None) or "a playbook"
        description = {
            "playbook": os.path.relpath(name) if not os.path.relpath(name).startswith("..") else name,
            "pid": os.getpid(),
            "user": _user(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        job = extra.get("awx_job_id") or extra.get("tower_job_id")
        if job is not None:
            description["awx_job_id"] = str(job)
        waited = []

        def on_wait(holders):
            waited.append(True)
            display.display("The deployment's lock %s is held by %s: this run (%s) waits for it up to %d s "
                            "(gpuops_lock_timeout)." % (paths[0], self._names(holders), mode, timeout))

        try:
            held = lock.take(paths[0], mode, timeout, description, on_wait=on_wait)
        except lock.LockBusy as busy:
            raise LockRefusal(
                "The deployment's lock %s is held by %s. This run (%s, %s) waited %d s for it and stopped before "
                "any play: nothing was changed. Run it again when that run has ended (or wait longer with -e "
                "gpuops_lock_timeout=SECONDS). A lock ends with its process: when that run is not running any more, "
                "the lock is already free." % (paths[0], self._names(busy.holders), description["playbook"], mode,
                                               timeout)) from None
        display.vv("Holding the deployment's lock %s (%s)." % (held["path"], held["mode"]))
        if waited:
            # The run waited for may have created or destroyed pods: read the inventory as it is now.
            inventory = getattr(manager, "_inventory", None)
            if inventory is not None:
                inventory.refresh_inventory()
                display.display("Got the deployment's lock %s after waiting; the inventory was read again."
                                % held["path"])

    @staticmethod
    def _names(holders):
        if not holders:
            return "another run that has not described itself yet"
        return "; ".join(lock.describe(holder) for holder in holders)
