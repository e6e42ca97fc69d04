#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: slurm_job_info
short_description: Look at a Slurm job, and optionally wait until it ends
version_added: 0.1.0
description:
  - Returns the state of one Slurm job, its exit code, nodes, run time and output files.
  - With O(wait=true) it first waits until the job ends, and returns the tails of its output files.
  - Changes nothing. To submit or cancel a job use M(gpuops.platform.slurm_job).
  - Runs on the Slurm controller (the host of C(slurmctld)) or any host with Slurm's client commands and the cluster's
    configuration.
  - Looks the job up with C(scontrol show job) (its JSON form on Slurm 23.02 and later, its one-line form on older
    releases). slurmctld keeps an ended job for C(MinJobAge) seconds (300 by default); after that the module asks
    C(sacct) if accounting is enabled. A job that neither knows is reported with RV(exists=false).
  - Every command runs as an argument list, never through a shell.
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; in check mode it does the same, waiting included.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  job_id:
    description:
      - The job to look at.
    type: int
    required: true
  wait:
    description:
      - Wait until the job ends, in any state.
      - A job that ends in a state other than V(COMPLETED) does not fail the task; its RV(state), RV(exit_code) and
        RV(reason) say how it ended. Only a wait that reaches O(wait_timeout) fails it.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true). When they pass the task fails with RV(timed_out=true); the job is not
        cancelled and keeps running.
    type: int
    default: 3600
  poll_interval:
    description:
      - The most seconds between two looks at the job's state while waiting. For the first two seconds it looks
        every quarter of a second, then each wait doubles up to this, so a short job's end is seen at once and a
        long job costs one query per O(poll_interval).
    type: int
    default: 5
  tail_lines:
    description:
      - With O(wait=true), how many lines from the end of the job's output and error files to return.
      - The files must be readable on the host the module runs on (the batch host is this host, or they lie on shared
        storage); otherwise the module warns and returns no tail.
      - V(0) reads nothing (for example when the caller fetches the files from the batch host itself).
    type: int
    default: 50
notes:
  - Slurm expands patterns such as C(%j) in the output and error paths; the module returns the expanded paths that
    C(scontrol) reports.
seealso:
  - module: gpuops.platform.slurm_job
  - name: scontrol
    description: Slurm's manual page of scontrol.
    link: https://slurm.schedmd.com/scontrol.html
  - name: sacct
    description: Slurm's manual page of sacct.
    link: https://slurm.schedmd.com/sacct.html
"""

EXAMPLES = r"""
- name: Submit a job and go on
  gpuops.platform.slurm_job:
    content: |
      #!/bin/bash
      python3 /data/bench.py
    job_name: bench
    gpus_per_node: 1
  register: bench

- name: Look at it later
  gpuops.platform.slurm_job_info:
    job_id: "{{ bench.job_id }}"
  register: bench_state

- name: Say where it runs
  ansible.builtin.debug:
    msg: "job {{ bench_state.job_id }} is {{ bench_state.state }} on {{ bench_state.nodes | join(', ') }}"
  when: bench_state.exists

- name: Wait up to an hour for it to end, then look at how it ended
  gpuops.platform.slurm_job_info:
    job_id: "{{ bench.job_id }}"
    wait: true
    wait_timeout: 3600
    poll_interval: 30
  register: bench_end

- name: Fail unless it completed
  ansible.builtin.assert:
    that: bench_end.state == 'COMPLETED'
    fail_msg: "{{ bench_end.msg }}"
"""

RETURN = r"""
exists:
  description:
    - Whether Slurm knows the job. When it does not (a wrong id, or an ended job that slurmctld has forgotten while
      accounting is disabled), only RV(job_id), RV(state) (null) and RV(msg) are returned.
  returned: always
  type: bool
  sample: true
msg:
  description: What the module found, for example how the job ended, or why Slurm does not know it.
  returned: always
  type: str
  sample: job 42 (train-resnet) ended FAILED with exit code 3 (reason NonZeroExitCode)
job_id:
  description: The job's id.
  returned: always
  type: int
  sample: 42
job_name:
  description: The job's name.
  returned: when the job is known
  type: str
  sample: train-resnet
state:
  description:
    - The job's state as Slurm names it, for example V(PENDING), V(RUNNING), V(COMPLETING), V(COMPLETED), V(FAILED),
      V(CANCELLED), V(TIMEOUT), V(NODE_FAIL), V(OUT_OF_MEMORY) or V(PREEMPTED).
    - Null when Slurm does not know the job.
  returned: always
  type: str
  sample: COMPLETED
reason:
  description: Slurm's reason for the state, for example V(Resources) or V(NonZeroExitCode); null when Slurm gives none.
  returned: when the job is known
  type: str
  sample: NonZeroExitCode
exit_code:
  description: Exit code of the batch script (the part before the colon of Slurm's C(ExitCode=N:M)).
  returned: when the job is known
  type: int
  sample: 3
signal:
  description: Signal that ended the batch script (the part after the colon), 0 when none.
  returned: when the job is known
  type: int
  sample: 0
nodes:
  description: The job's nodes, expanded from the host list; empty while the job is pending.
  returned: when the job is known
  type: list
  elements: str
  sample: [gpu-1, gpu-2]
nodelist:
  description: The job's nodes as Slurm's compressed host list.
  returned: when the job is known
  type: str
  sample: gpu-[1-2]
elapsed:
  description: Seconds the job has run (Slurm's C(RunTime)).
  returned: when the job is known
  type: int
  sample: 3611
partition:
  description: The job's partition.
  returned: when the job is known
  type: str
  sample: gpu
batch_host:
  description: The node that runs the batch script; null while pending and when the state came from C(sacct).
  returned: when the job is known
  type: str
  sample: gpu-1
stdout_path:
  description: The job's output file with Slurm's patterns expanded; null when the state came from C(sacct).
  returned: when the job is known
  type: str
  sample: /data/logs/train-resnet-42.out
stderr_path:
  description: The job's error file with Slurm's patterns expanded; the same as RV(stdout_path) when standard error goes there.
  returned: when the job is known
  type: str
  sample: /data/logs/train-resnet-42.out
admin_comment:
  description:
    - The job's administrator comment (C(AdminComment)), where a C(PrologSlurmctld) may record facts about the
      allocation; gpuops records the GPUs' price per GPU-hour there.
    - Null when there is none, and when the state came from C(sacct).
  returned: when the job is known
  type: str
  sample: gpuops_usd_per_gpu_hour=0.690000
alloc_tres:
  description:
    - The trackable resources allocated to the job (C(AllocTRES)), for example its GPUs as C(gres/gpu=N).
    - Null while the job is pending, and when the state came from C(sacct).
  returned: when the job is known
  type: str
  sample: cpu=1,node=1,billing=1,gres/gpu=1
source:
  description: Where the state came from, V(scontrol) (slurmctld) or V(sacct) (the accounting database).
  returned: when the job is known
  type: str
  sample: scontrol
stdout_tail:
  description: The last O(tail_lines) lines of the output file; null when it cannot be read on this host.
  returned: when the job is known and O(wait=true)
  type: str
  sample: "epoch 90/90 loss=0.71\ndone"
stderr_tail:
  description:
    - The last O(tail_lines) lines of the error file; null when it cannot be read on this host, and when standard
      error goes to the output file.
  returned: when the job is known and O(wait=true)
  type: str
  sample: "Traceback (most recent call last):"
timed_out:
  description: Whether O(wait_timeout) passed before the job ended. The job was not cancelled.
  returned: when the job is known and O(wait=true)
  type: bool
  sample: false
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._slurm import (
    SlurmCommands,
    SlurmError,
    SlurmJob,
    SlurmJobUnknown,
    ended_message,
    job_result,
    job_tails,
    still_running_message,
    wait_for_job,
)


# Injected by the unit tests to wait without waiting.
CLOCK = time.monotonic
SLEEP = time.sleep


def _state_message(job: SlurmJob) -> str:
    if job.finished:
        return "job %d completed" % job.job_id if job.succeeded else ended_message(job)
    msg = "job %d is %s" % (job.job_id, job.state)
    if job.reason:
        msg += " (reason: %s)" % job.reason
    return msg


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            job_id=dict(type="int", required=True),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=3600),
            poll_interval=dict(type="int", default=5),
            tail_lines=dict(type="int", default=50),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name, minimum in (("job_id", 1), ("wait_timeout", 1), ("poll_interval", 1), ("tail_lines", 0)):
        if p[name] < minimum:
            module.fail_json(msg="%s must be %d or more, got %d" % (name, minimum, p[name]))

    commands = SlurmCommands(module)
    job_id = p["job_id"]
    result = dict(changed=False, job_id=job_id)
    try:
        if p["wait"]:
            job, timed_out = wait_for_job(commands, job_id, timeout=p["wait_timeout"], interval=p["poll_interval"],
                                          clock=CLOCK, sleep=SLEEP)
        else:
            job, timed_out = commands.job(job_id), None
    except SlurmJobUnknown as err:
        module.exit_json(exists=False, state=None, msg=err.message, **result)
    except SlurmError as err:
        if err.cmd and err.rc is not None:
            result.update(cmd=err.cmd, rc=err.rc, stderr=err.stderr)
        module.fail_json(msg=err.message, **result)

    result.update(job_result(commands, job), exists=True, msg=_state_message(job))
    if p["wait"]:
        result["timed_out"] = timed_out
        result.update(job_tails(module.warn, job, p["tail_lines"]))
        if timed_out:
            result["msg"] = still_running_message(job, p["wait_timeout"])
            module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
