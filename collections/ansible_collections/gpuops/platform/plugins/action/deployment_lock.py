# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of gpuops.platform.deployment_lock (documentation: plugins/modules/deployment_lock.py).

The lock itself is taken by the callback plugin gpuops.platform.deployment_lock
in the ansible-playbook process: a lock taken here would die with this task's
worker process. Workers are forks of that process, so this plugin sees what it
holds and fails when the run does not hold the lock it asks for.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase
from ansible_collections.gpuops.platform.plugins.plugin_utils import _deployment_lock as lock

ARGUMENT_SPEC = dict(
    mode=dict(type="str", required=True, choices=list(lock.MODES)),
    path=dict(type="path", required=True),
    timeout=dict(type="int", default=60),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        path = os.path.abspath(os.path.expanduser(args["path"]))
        held = lock.HELD
        if held is None:
            result.update(failed=True, msg=(
                "This run does not hold the deployment's lock %s: the callback plugin gpuops.platform.deployment_lock "
                "that takes it is not enabled. Enable it in ansible.cfg ([defaults] callbacks_enabled = "
                "gpuops.platform.deployment_lock; an ANSIBLE_CALLBACKS_ENABLED environment variable replaces that "
                "list, so name it there too). Nothing was changed." % path))
            return result
        if held["path"] != path:
            result.update(failed=True, msg=(
                "This run holds the deployment's lock %s, not %s: gpuops_state_dir or gpuops_cloud changed during the "
                "run. Run one deployment per run. Nothing was changed here." % (held["path"], path)))
            return result
        if lock.stronger(held["mode"], args["mode"]) != held["mode"]:
            result.update(failed=True, msg=(
                "This run holds the deployment's lock %s shared, but this play needs it exclusive: run this playbook "
                "on its own. Nothing was changed here." % path))
            return result
        result.update(
            changed=False,
            lock={key: held[key] for key in ("path", "mode", "playbook", "pid", "user", "host", "started")},
            msg="This run holds the deployment's lock %s (%s) since %s." % (path, held["mode"], held["started"]),
        )
        return result
