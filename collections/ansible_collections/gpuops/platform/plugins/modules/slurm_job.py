#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: slurm_job
short_description: Submit and cancel Slurm batch jobs
version_added: 0.1.0
description:
  - Submits a batch script with C(sbatch), optionally waits until the job ends and returns its state, exit code,
    nodes and the tails of its output files.
  - Cancels a job with C(scancel).
  - To look at a job without changing anything use M(gpuops.platform.slurm_job_info).
  - Runs on the Slurm controller (the host of C(slurmctld)), where Slurm's client commands are installed. O(user)
    needs root.
  - Looks a job up with C(scontrol show job) (its JSON form on Slurm 23.02 and later, its one-line form on older
    releases such as the 22.05 that gpuops installs). slurmctld keeps an ended job for C(MinJobAge) seconds (300 by
    default); after that the module asks C(sacct) if accounting is enabled, and otherwise fails with a message
    saying that the job is unknown.
  - Every command runs as an argument list, never through a shell.
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=submitted) the module checks the script, finds C(sbatch) and runs C(sbatch --test-only), which
        validates the request against the cluster without submitting it, and returns the command it would run.
      - With O(state=cancelled) it reports whether it would cancel the job.
  diff_mode:
    support: none
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details:
      - O(state=cancelled) is idempotent.
      - O(state=submitted) submits a new job every time it runs.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(submitted) submits a batch job.
      - V(cancelled) cancels job O(job_id) if it is pending or running, and reports no change otherwise
        (including when Slurm no longer knows the job).
    type: str
    choices: [submitted, cancelled]
    default: submitted
  job_id:
    description:
      - The job to cancel. Required with O(state=cancelled).
    type: int
  script:
    description:
      - Path of the batch script on the host the module runs on. It must be a readable, non-empty file.
      - C(sbatch) reads the script when the job is submitted; later changes to the file do not affect the job.
      - Mutually exclusive with O(content). One of them is required with O(state=submitted).
    type: path
  content:
    description:
      - Text of the batch script; it must start with a C(#!) line.
      - Written to a file that only root can read (mode 0700) in the task's private temporary directory, submitted,
        then removed; Slurm keeps its own copy.
      - Mutually exclusive with O(script).
    type: str
  job_name:
    description:
      - Name of the job (C(--job-name)). Any characters except line breaks; it is passed as one argument, never
        through a shell.
    type: str
  partition:
    description:
      - Partition to submit to (C(--partition)). The cluster's default partition when not set.
    type: str
  nodes:
    description:
      - Number of nodes (C(--nodes)), at least 1.
    type: int
  ntasks:
    description:
      - Number of tasks (C(--ntasks)), at least 1.
    type: int
  gpus:
    description:
      - Number of GPUs for the whole job, spread over its nodes as Slurm sees fit (C(--gpus)). V(0) requests none
        and adds no option.
      - Mutually exclusive with O(gpus_per_node). gpuops' own playbooks, API and web form ask for O(gpus_per_node).
    type: int
  gpus_per_node:
    description:
      - Number of GPUs on each of the job's nodes (C(--gpus-per-node)); the job gets O(nodes) times this many.
        V(0) requests none and adds no option.
      - It must be at most the GPUs of the job's nodes (a RunPod pod's GPU count), or C(sbatch) refuses the job
        with C(Requested node configuration is not available).
      - Mutually exclusive with O(gpus).
    type: int
    version_added: 0.2.0
  time:
    description:
      - Time limit (C(--time)) in one of Slurm's formats, V(MINUTES), V(MINUTES:SECONDS), V(HOURS:MINUTES:SECONDS),
        V(DAYS-HOURS), V(DAYS-HOURS:MINUTES), V(DAYS-HOURS:MINUTES:SECONDS) or V(UNLIMITED).
      - For example V(30), V(1:30:00) or V(2-00:00:00).
      - Quote it in YAML. Unquoted, V(1:30:00) is read as the base-60 number 5400, which Slurm takes as minutes.
    type: str
  env:
    description:
      - Environment variables for the job, on top of the environment of the submitting process.
      - The values are handed to C(sbatch) through its own environment with C(--export=ALL), not on its command
        line, so they may hold commas, spaces, quotes or line breaks, and do not show in the process list. Values are
        converted to strings.
      - An export list (C(--export=ALL,NAME)) is not used on purpose, and O(sbatch_args) must not hold C(--export)
        together with O(env). An export list makes Slurm rebuild the user's login environment on the node, which
        fails in unprivileged containers such as RunPod pods.
      - Names must be valid environment variable names. Names that start with C(SBATCH_) also configure C(sbatch)
        itself.
    type: dict
  chdir:
    description:
      - Working directory of the job on the node that runs it (C(--chdir)). Without it Slurm uses the working
        directory of the module, usually the home directory of the remote user.
    type: path
  output:
    description:
      - File for the job's standard output (C(--output)), on the node that runs the batch script. Slurm's filename
        patterns such as C(%j) (job id) and C(%x) (job name) are expanded by Slurm.
      - The directory must exist on that node, or the job fails to start.
    type: path
  error:
    description:
      - File for the job's standard error (C(--error)). Defaults to the output file.
    type: path
  user:
    description:
      - Run the job as this user (C(--uid)); a user name or a numeric id. Only root may do this.
    type: str
  sbatch_args:
    description:
      - Further C(sbatch) arguments, each one list element, placed before the script. For example
        V([--mem=16G, --cpus-per-task=8]).
    type: list
    elements: str
    default: []
  wait:
    description:
      - Wait until the submitted job ends (O(state=submitted)).
      - A job that ends in any state but V(COMPLETED) fails the task, with its state, exit code and output tails.
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
      - How many lines from the end of the job's output and error files to return after waiting.
      - The files must be readable on the host the module runs on (the batch host is the controller, or they lie
        on shared storage); otherwise the module warns and returns no tail.
      - V(0) reads nothing (for example when the caller fetches the files from the batch host itself).
    type: int
    default: 50
notes:
  - Slurm expands patterns such as C(%j) in the output and error paths; the module returns the expanded paths that
    C(scontrol) reports.
seealso:
  - module: gpuops.platform.slurm_job_info
  - name: sbatch
    description: Slurm's manual page of sbatch.
    link: https://slurm.schedmd.com/sbatch.html
  - name: scontrol
    description: Slurm's manual page of scontrol.
    link: https://slurm.schedmd.com/scontrol.html
"""

EXAMPLES = r"""
- name: Train on two nodes with two GPUs each and wait for the result
  gpuops.platform.slurm_job:
    script: /data/jobs/train.sh
    job_name: train-resnet
    partition: gpu
    nodes: 2
    gpus_per_node: 2  # 4 GPUs in all
    time: "04:00:00"
    output: /data/logs/%x-%j.out
    env:
      WANDB_TAGS: "resnet,baseline"
      EPOCHS: 90
    wait: true
    wait_timeout: 14400
    poll_interval: 30
  register: train

- name: Show where it ran
  ansible.builtin.debug:
    msg: "job {{ train.job_id }} ran on {{ train.nodes | join(', ') }} in {{ train.elapsed }} s"

- name: Submit an inline script and go on
  gpuops.platform.slurm_job:
    content: |
      #!/bin/bash
      nvidia-smi
      python3 /data/bench.py
    job_name: bench
    gpus_per_node: 1
    sbatch_args:
      - --mem=16G
  register: bench

- name: Look at it later
  gpuops.platform.slurm_job_info:
    job_id: "{{ bench.job_id }}"
  register: bench_state

- name: Cancel it
  gpuops.platform.slurm_job:
    state: cancelled
    job_id: "{{ bench.job_id }}"
"""

RETURN = r"""
job_id:
  description: The job's id. Null in check mode with O(state=submitted).
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
    - Null in check mode with O(state=submitted), and when O(state=cancelled) finds no such job.
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
  description: The job's error file with Slurm's patterns expanded; the same as RV(stdout_path) unless O(error) was set.
  returned: when the job is known
  type: str
  sample: /data/logs/train-resnet-42.out
stdout_tail:
  description: The last O(tail_lines) lines of the output file; null when it cannot be read on this host.
  returned: after waiting
  type: str
  sample: "epoch 90/90 loss=0.71\ndone"
stderr_tail:
  description:
    - The last O(tail_lines) lines of the error file; null when it cannot be read on this host, and when standard
      error goes to the output file.
  returned: after waiting
  type: str
  sample: "Traceback (most recent call last):"
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
cmd:
  description:
    - The C(sbatch) command (submitted, or in check mode the one that would be submitted), or the C(scancel) command.
    - Environment variable values of O(env) are not part of it; they travel in the environment.
  returned: when a command was built
  type: list
  elements: str
  sample: [/usr/bin/sbatch, --parsable, --job-name=train-resnet, --nodes=2, --gpus-per-node=2, /data/jobs/train.sh]
timed_out:
  description: Whether O(wait_timeout) passed before the job ended. The job was not cancelled.
  returned: after waiting
  type: bool
  sample: false
"""

import os
import pwd
import tempfile
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._slurm import (
    SbatchRequest,
    SlurmCommands,
    SlurmError,
    SlurmJobUnknown,
    ended_message,
    job_result,
    job_tails,
    still_running_message,
    validate_env,
    validate_time_spec,
    wait_for_job,
)


# Injected by the unit tests to wait without waiting.
CLOCK = time.monotonic
SLEEP = time.sleep


def _fail(module: AnsibleModule, err: SlurmError, **result: t.Any) -> t.NoReturn:
    """Fail with the error's message, and the command, rc and stderr when a command ran."""
    if err.cmd and err.rc is not None:
        result.update(cmd=err.cmd, rc=err.rc, stderr=err.stderr)
    module.fail_json(msg=err.message, **result)


def _validate(module: AnsibleModule) -> dict:
    """Check the options that the argument spec cannot check; returns cleaned values."""
    p = module.params
    for name, minimum in (("nodes", 1), ("ntasks", 1), ("gpus", 0), ("gpus_per_node", 0), ("job_id", 1), ("wait_timeout", 1),
                          ("poll_interval", 1), ("tail_lines", 0)):
        if p[name] is not None and p[name] < minimum:
            module.fail_json(msg="%s must be %d or more, got %d" % (name, minimum, p[name]))
    if p["job_name"] is not None:
        if not p["job_name"].strip():
            module.fail_json(msg="job_name must not be empty")
        if any(c in p["job_name"] for c in "\r\n\x00"):
            module.fail_json(msg="job_name %r must not hold line breaks or NUL characters" % p["job_name"])
    if p["time"] is not None:
        try:
            validate_time_spec(p["time"])
        except ValueError as err:
            module.fail_json(msg=str(err))
    env = {}
    if p["env"]:
        try:
            env = validate_env(p["env"])
        except ValueError as err:
            module.fail_json(msg=str(err))
    if p["user"] is not None:
        try:
            if p["user"].isdigit():
                pwd.getpwuid(int(p["user"]))
            else:
                pwd.getpwnam(p["user"])
        except KeyError:
            module.fail_json(msg="user %r does not exist on this host" % p["user"])
    if env and any(arg.startswith("--export") for arg in p["sbatch_args"] or []):
        module.fail_json(msg="env needs sbatch's --export=ALL: drop --export from sbatch_args, or pass the variables "
                             "through it instead of env")
    if p["content"] is not None and not p["content"].strip():
        module.fail_json(msg="content is empty: give the text of a batch script, starting with a #! line")
    return dict(env=env)


def _check_script(module: AnsibleModule, path: str) -> None:
    if not os.path.exists(path):
        module.fail_json(msg="script %s does not exist on this host" % path)
    if not os.path.isfile(path):
        module.fail_json(msg="script %s is not a regular file" % path)
    if not os.access(path, os.R_OK):
        module.fail_json(msg="script %s is not readable" % path)
    if os.path.getsize(path) == 0:
        module.fail_json(msg="script %s is empty" % path)


def _write_content(module: AnsibleModule, content: str) -> str:
    """The script text in a private file of the task's temporary directory (removed when the module exits)."""
    fd, path = tempfile.mkstemp(prefix="slurm_job-", suffix=".sh", dir=module.tmpdir)
    try:
        os.fchmod(fd, 0o700)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content if content.endswith("\n") else content + "\n")
    except OSError as err:
        module.fail_json(msg="cannot write the script to %s: %s" % (path, err))
    return path


def _wait(module: AnsibleModule, commands: SlurmCommands, job_id: int, result: dict) -> None:
    """Wait for the job; exit or fail the module with its final state."""
    p = module.params
    job, timed_out = wait_for_job(commands, job_id, timeout=p["wait_timeout"], interval=p["poll_interval"],
                                  clock=CLOCK, sleep=SLEEP)
    result.update(job_result(commands, job))
    result["timed_out"] = timed_out
    result.update(job_tails(module.warn, job, p["tail_lines"]))
    if timed_out:
        result["msg"] = still_running_message(job, p["wait_timeout"])
        module.fail_json(**result)
    if not job.succeeded:
        result["msg"] = ended_message(job)
        module.fail_json(**result)
    result["msg"] = "job %d completed" % job_id
    module.exit_json(**result)


def _submit(module: AnsibleModule, commands: SlurmCommands, env: dict) -> None:
    p = module.params
    if p["script"] is not None:
        _check_script(module, p["script"])
        script = p["script"]
    else:
        script = _write_content(module, p["content"])
    request = SbatchRequest(
        script=script,
        job_name=p["job_name"],
        partition=p["partition"],
        nodes=p["nodes"],
        ntasks=p["ntasks"],
        gpus=p["gpus"],
        gpus_per_node=p["gpus_per_node"],
        time=p["time"],
        chdir=p["chdir"],
        output=p["output"],
        error=p["error"],
        user=p["user"],
        env=env,
        extra_args=list(p["sbatch_args"] or []),
    )
    cmd = commands.sbatch_command(request)
    if module.check_mode:
        try:
            answer = commands.test_only(request)
        except SlurmError as err:
            _fail(module, err)
        module.exit_json(changed=True, job_id=None, state=None, cmd=cmd,
                         msg="check mode: would submit the job; sbatch --test-only says: %s" % answer)

    try:
        submission = commands.submit(request)
    except SlurmError as err:
        _fail(module, err, changed=False)
    result = dict(changed=True, job_id=submission.job_id, cmd=submission.cmd)
    if submission.stderr:
        module.warn("sbatch: %s" % submission.stderr)
    try:
        if p["wait"]:
            _wait(module, commands, submission.job_id, result)
        result.update(job_result(commands, commands.job(submission.job_id)))
    except SlurmError as err:
        result["msg"] = "job %d was submitted, but its state cannot be read: %s" % (submission.job_id, err.message)
        module.fail_json(**result)
    result["msg"] = "submitted job %d" % submission.job_id
    module.exit_json(**result)


def _cancel(module: AnsibleModule, commands: SlurmCommands) -> None:
    job_id = module.params["job_id"]
    try:
        job = commands.job(job_id)
    except SlurmJobUnknown as err:
        module.warn(err.message)
        module.exit_json(changed=False, job_id=job_id, state=None, msg="job %d is unknown to Slurm; nothing to cancel" % job_id)
    result = dict(changed=False, job_id=job_id)
    if not job.cancellable:
        result.update(job_result(commands, job))
        result["msg"] = "job %d is %s; nothing to cancel" % (job_id, job.state)
        module.exit_json(**result)
    result["changed"] = True
    if module.check_mode:
        result.update(job_result(commands, job))
        result["cmd"] = [commands.binary("scancel"), str(job_id)]
        result["msg"] = "check mode: would cancel job %d, which is %s" % (job_id, job.state)
        module.exit_json(**result)
    result["cmd"] = commands.cancel(job_id)
    try:
        job = commands.job(job_id)
    except SlurmJobUnknown:
        pass
    result.update(job_result(commands, job))
    result["msg"] = "cancelled job %d" % job_id
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="submitted", choices=["submitted", "cancelled"]),
            job_id=dict(type="int"),
            script=dict(type="path"),
            content=dict(type="str"),
            job_name=dict(type="str"),
            partition=dict(type="str"),
            nodes=dict(type="int"),
            ntasks=dict(type="int"),
            gpus=dict(type="int"),
            gpus_per_node=dict(type="int"),
            time=dict(type="str"),
            env=dict(type="dict"),
            chdir=dict(type="path"),
            output=dict(type="path"),
            error=dict(type="path"),
            user=dict(type="str"),
            sbatch_args=dict(type="list", elements="str", default=[]),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=3600),
            poll_interval=dict(type="int", default=5),
            tail_lines=dict(type="int", default=50),
        ),
        mutually_exclusive=[("script", "content"), ("gpus", "gpus_per_node")],
        required_if=[
            ("state", "submitted", ("script", "content"), True),
            ("state", "cancelled", ("job_id",)),
        ],
        supports_check_mode=True,
    )
    cleaned = _validate(module)
    commands = SlurmCommands(module)
    try:
        if module.params["state"] == "submitted":
            _submit(module, commands, cleaned["env"])
        else:
            _cancel(module, commands)
    except SlurmError as err:
        _fail(module, err)


if __name__ == "__main__":
    main()
