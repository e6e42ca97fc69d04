# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The code is the action plugin plugins/action/job_request.py: it runs on the
# control host only, reading the play's variables as they were given.

from __future__ import annotations

DOCUMENTATION = r"""
module: job_request
short_description: Check a job request given as extra vars, and return it as data that is never templated
author:
  - gpuops maintainers (@gpuops)
description:
  - The one check of a batch job request that C(submit_job.yml) gets from the command line or an AWX survey. Reads the
    extra vars C(script), C(job_name), C(nodes), C(ntasks), C(gpus_per_node), C(partition), C(time), C(wait)
    and C(wait_timeout) as they were given, before any templating, so that C({{ ... }}) in a job name or in a script's
    text stays text and never runs on the control host.
  - Returns them in RV(request) as data that Ansible never templates again; the playbook uses only that.
  - The script is either its text (starting with C(#!), as an AWX survey sends it) or a path on the control host.
    A path must be a regular file (not a symbolic link, not a directory) that this user can read, as UTF-8 text, and
    must not lie inside one of O(state_dirs) (keys, tokens, Terraform state). A relative path starts at the caller's
    working directory. Under AWX (the extra var C(awx_job_id) or C(tower_job_id) is set) only the script's
    text is accepted, never a path.
  - Optional inputs given as an empty string count as not given (AWX surveys send them so).
  - C(gpus_per_node) is the number of GPUs on each of the job's nodes (Slurm's C(--gpus-per-node)); the job gets
    C(nodes) times that many. It must be at most the GPU count of the C(nodes)-th largest node of O(node_gpus), so
    that C(nodes) nodes with that many GPUs exist.
  - The extra var C(gpus) is refused with a message naming C(gpus_per_node) (it was read as GPUs for the whole job
    in some places and per node in others).
  - Every refusal says what was wrong and what to do, and ends with C(Nothing was submitted.).
version_added: 0.1.0
options:
  node_gpus:
    description:
      - The GPU count of each node of the cluster (each pod's), for example V([2, 1]).
      - Its length is the cluster's nodes; C(nodes) must be 1 to that.
      - C(gpus_per_node) must be at most the C(nodes)-th largest count.
    type: list
    elements: int
    required: true
    version_added: 0.2.0
  multi_node:
    description:
      - Whether a job may span nodes. V(false) when the pods have no network between them (RunPod without global
        networking); a request for more than one node is then refused with how to turn global networking on.
    type: bool
    default: true
  max_script_bytes:
    description: The largest script accepted, in bytes.
    type: int
    default: 1048576
  state_dirs:
    description: Directories a script path must not lie in (gpuops' state directory).
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: It only reads.
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
    description: It only reads; a second run returns the same request.
    support: full
notes:
  - Run it on C(localhost). Its result is marked unsafe, so no value in it is ever rendered as a template.
"""

EXAMPLES = r"""
- name: Check the job request
  gpuops.platform.job_request:
    node_gpus: "{{ groups['slurm_compute'] | map('extract', hostvars, 'runpod_gpu_count') | map('int') | list }}"
    state_dirs: ["{{ gpuops_state_dir }}"]
  register: job

- name: Copy the script, as text, to the controller
  ansible.builtin.copy:
    content: "{{ job.request.script_text }}"
    dest: /var/lib/gpuops/jobs/x/job.sh
    mode: "0700"
"""

RETURN = r"""
request:
  description: The checked request. Strings in it are never templated.
  returned: success
  type: dict
  contains:
    script_text:
      description: The script's text.
      type: str
      sample: "#!/bin/bash\nnvidia-smi\n"
    script_name:
      description: The script file's name, or C(job.sh) for a script given as text.
      type: str
      sample: train.sh
    job_name:
      description: C(job_name), else RV(request.script_name).
      type: str
      sample: train.sh
    nodes:
      description: Nodes asked for (default 1).
      type: int
      sample: 1
    ntasks:
      description: Tasks asked for (default 1).
      type: int
      sample: 1
    gpus_per_node:
      description: GPUs asked for on each of the job's nodes (default 0).
      type: int
      sample: 1
    gpus_total:
      description: GPUs of the whole job, RV(request.nodes) times RV(request.gpus_per_node).
      type: int
      sample: 2
    partition:
      description: The partition, or null for the default one.
      type: str
      sample: gpu
    time:
      description: The time limit, or null for the partition's.
      type: str
      sample: "1:00:00"
    wait:
      description: Whether to wait for the job to end (default true).
      type: bool
      sample: true
    wait_timeout:
      description: Seconds to wait (default 3600).
      type: int
      sample: 3600
"""
