# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The code is the action plugin plugins/action/deployment_lock.py (a check on the
# control host) and the callback plugin plugins/callback/deployment_lock.py
# (which takes the lock in the ansible-playbook process).

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_lock
short_description: Declare the deployment's lock a playbook needs, and check that the run holds it
author:
  - gpuops maintainers (@gpuops)
description:
  - Declares that a playbook needs the deployment's lock, exclusive (it changes the deployment, such as C(site.yml)
    and C(teardown.yml)) or shared (it only uses it, such as C(submit_job.yml)).
  - The lock is taken by the callback plugin P(gpuops.platform.deployment_lock#callback) when the playbook starts,
    before any play, in the ansible-playbook process, and held until that process ends. It finds the tasks of this
    module in all the playbook's plays, imported ones included, and takes the strongest mode they ask for. Another
    run that holds the lock makes it wait up to O(timeout) seconds, then stop before any play, naming that run.
  - The task itself checks that the run holds the lock in O(mode) at O(path), and fails (telling how to enable the
    callback) when it does not. Put it first in a playbook, tagged C(always).
version_added: 0.1.0
options:
  mode:
    description: V(exclusive) for a playbook that changes the deployment, V(shared) for one that only uses it.
    type: str
    required: true
    choices: [shared, exclusive]
  path:
    description:
      - The lock file, one per deployment; C(<gpuops_state_dir>/<gpuops_cloud>/lock) in gpuops' playbooks. Its
        directory is created (mode 0700) when missing. Each holder describes itself in a file under
        C(<path>.holders/).
      - The callback renders it with the variables of C(localhost) when the playbook starts.
    type: path
    required: true
  timeout:
    description:
      - Seconds a run waits for the lock while another run holds it, 0 to 86400, before it stops before any play.
      - gpuops' playbooks set it from C(gpuops_lock_timeout), default 60.
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: The lock is taken in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  idempotent:
    description: It only checks.
    support: full
notes:
  - Needs the callback plugin P(gpuops.platform.deployment_lock#callback) enabled in C(callbacks_enabled).
  - Run it on C(localhost).
seealso:
  - plugin: gpuops.platform.deployment_lock
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Hold the deployment's lock for the whole run
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check that this run holds the deployment's lock
      gpuops.platform.deployment_lock:
        mode: exclusive
        path: "{{ gpuops_state_dir }}/{{ gpuops_cloud }}/lock"
        timeout: "{{ gpuops_lock_timeout | default(60) }}"
      tags: [always]
"""

RETURN = r"""
lock:
  description: The lock this run holds.
  returned: success
  type: dict
  contains:
    path:
      description: The lock file.
      type: str
      sample: /srv/gpuops/.gpuops/runpod/lock
    mode:
      description: V(shared) or V(exclusive).
      type: str
      sample: exclusive
    playbook:
      description: The playbook this run started with.
      type: str
      sample: site.yml
    pid:
      description: The ansible-playbook process that holds it.
      type: int
      sample: 4242
    user:
      description: The user that runs it.
      type: str
      sample: ops
    host:
      description: The control host.
      type: str
      sample: ops-laptop
    started:
      description: When the lock was taken (UTC).
      type: str
      sample: "2026-12-05T10:00:00Z"
"""
