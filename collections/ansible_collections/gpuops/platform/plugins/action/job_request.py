# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of gpuops.platform.job_request (documentation: plugins/modules/job_request.py).

It runs on the control host only. It reads the job request's extra vars as
they were given (task_vars hold them unrendered), checks them, reads the
script, and returns them as data that is never templated again.
"""

from __future__ import annotations

import os
import re
import stat

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.gpuops.platform.plugins.module_utils._slurm import validate_time_spec

INPUTS = ("script", "job_name", "nodes", "ntasks", "gpus_per_node", "partition", "time", "wait", "wait_timeout")
# Whole numbers: name -> (default, smallest accepted). The AWX survey is checked against these.
COUNTS = {"nodes": (1, 1), "ntasks": (1, 1), "gpus_per_node": (0, 0), "wait_timeout": (3600, 1)}
# Inputs that are refused by name, with what to ask for instead. `gpus` meant GPUs for the whole job on the command
# line and GPUs per node in the web app: with nodes=2 gpus=2 that is 2 GPUs one way and 4 the other.
RENAMED = {
    "gpus": ("gpus is not an input of a job request: it was read as GPUs for the whole job here and as GPUs per node "
             "elsewhere. Ask for gpus_per_node=N instead: N GPUs on each of the job's nodes, nodes x N in all "
             "(-e nodes=2 -e gpus_per_node=1 is 2 GPUs)."),
}
# Booleans: name -> default.
FLAGS = {"wait": True}
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")
PARTITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NOTHING = " Nothing was submitted."


class Refusal(Exception):
    """A request that cannot be submitted; the message says what to do."""


def _plain(value):
    """The value as given, as plain Python data (no template, no tag)."""
    if isinstance(value, str):
        return str.__str__(value)  # an exact str: whatever tag or subclass the input carried is gone
    return value


def _given(raw, name):
    """An optional input: None when absent, null or given as '' (as AWX surveys send it)."""
    value = raw.get(name)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    return value


def _count(raw, name, default, low, high, limit_text):
    value = _given(raw, name)
    if value is None:
        return default
    text = str(value).strip()
    if isinstance(value, bool) or not re.match(r"^[0-9]{1,6}$", text) or not low <= int(text) <= high:
        raise Refusal("Impossible request: %s=%s. %s" % (name, _plain(str(value))[:40], limit_text) + NOTHING)
    return int(text)


def _flag(raw, name, default):
    value = _given(raw, name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise Refusal("%s must be true or false, not '%s'." % (name, _plain(str(value))[:40]) + NOTHING)


def _inside(path, directory):
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def gpus_per_node_limit(node_gpus, nodes):
    """The most GPUs per node a job on `nodes` nodes can have: the `nodes`-th largest node's GPU count."""
    ranked = sorted(node_gpus, reverse=True)
    return ranked[nodes - 1] if 0 < nodes <= len(ranked) else 0


def check(raw, node_gpus, max_bytes, state_dirs, cwd, under_awx, multi_node=True):
    """The request as data, or Refusal. raw: the extra vars as given; node_gpus: each node's GPU count."""
    for name, instead in RENAMED.items():
        if _given(raw, name) is not None:
            raise Refusal(instead + NOTHING)
    script = raw.get("script")
    if script is None or not isinstance(script, str) or not script.strip():
        raise Refusal("Name the batch script to run: ansible-playbook submit_job.yml -e script=PATH "
                      "(or give the script's text, starting with #!)." + NOTHING)
    script = _plain(script)
    if script.startswith("#!"):
        text, name, source = script, "job.sh", "the script's text"
    elif under_awx:
        raise Refusal("Under AWX the script must be the script's text (starting with #!), not a path: a path "
                      "would read files of the execution environment." + NOTHING)
    else:
        given = script.strip()
        path = os.path.normpath(os.path.join(cwd, os.path.expanduser(given)))
        source = "%s (%s)" % (given, path) if path != given else given
        # Open first (never following a last-component link, never blocking on a FIFO), then judge the
        # file that was opened: its type and size from fstat, its real path from /proc, so that no
        # rename or link swapped in between the checks and the read can change what is read.
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise Refusal("There is no file %s (a relative path starts at %s)." % (source, cwd) + NOTHING) from None
        except PermissionError:
            raise Refusal("%s is not readable by this user: fix its permissions." % source + NOTHING) from None
        except OSError as err:
            if os.path.islink(path):
                raise Refusal("%s is a symbolic link: give the path of the batch script itself." % source
                              + NOTHING) from None
            raise Refusal("%s cannot be read: %s." % (source, err.strerror) + NOTHING) from None
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise Refusal("%s is not a regular file (a directory?): give the path of the batch script itself."
                              % source + NOTHING)
            try:
                real = os.readlink("/proc/self/fd/%d" % descriptor)
            except OSError:
                real = os.path.realpath(path)
            for directory in state_dirs:
                if directory and _inside(real, os.path.realpath(os.path.expanduser(directory))):
                    raise Refusal("%s is inside gpuops' state directory %s (keys, tokens, Terraform state): "
                                  "a job script never comes from there." % (source, directory) + NOTHING)
            if info.st_size == 0 or info.st_size > max_bytes:
                raise Refusal("%s is %d bytes: a batch script must hold something and at most %d bytes (ship data "
                              "separately; raise submit_max_script_bytes if you must)."
                              % (source, info.st_size, max_bytes) + NOTHING)
            chunks, left = [], max_bytes + 1
            while left > 0:
                try:
                    chunk = os.read(descriptor, min(left, 65536))
                except OSError as err:
                    raise Refusal("%s cannot be read: %s." % (source, err.strerror) + NOTHING) from None
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
        finally:
            os.close(descriptor)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal("%s is not UTF-8 text: a batch script is a text file." % source + NOTHING) from None
        name = os.path.basename(path)
    size = len(text.encode("utf-8"))
    if size == 0 or size > max_bytes:
        raise Refusal("%s is %d bytes: a batch script must hold something and at most %d bytes (ship data "
                      "separately; raise submit_max_script_bytes if you must)." % (source, size, max_bytes) + NOTHING)

    max_nodes = len(node_gpus)
    sizes = ", ".join(str(count) for count in sorted(node_gpus, reverse=True)) or "none"
    limits = ("This cluster has %d node(s), with GPUs: %s. nodes must be 1 to %d, ntasks at least 1, gpus_per_node "
              "(GPUs on each of the job's nodes) 0 to %d." % (max_nodes, sizes, max_nodes, max(node_gpus or [0])))
    nodes = _count(raw, "nodes", *COUNTS["nodes"], max_nodes, limits)
    if nodes > 1 and not multi_node:
        raise Refusal(
            "nodes=%d: this cluster's pods have no network between them, so a job runs on one node. Multi-node jobs "
            "need RunPod's global networking: provision the pods with -e provision_global_networking=true (NVIDIA "
            "on-demand pods in a data centre that offers it), or ask for nodes=1." % nodes + NOTHING)
    ntasks = _count(raw, "ntasks", *COUNTS["ntasks"], 100000, limits)
    gpus_per_node = _count(raw, "gpus_per_node", *COUNTS["gpus_per_node"], 10 ** 6, limits)
    most = gpus_per_node_limit(node_gpus, nodes)
    if gpus_per_node > most:
        raise Refusal(
            "Impossible request: gpus_per_node=%d with nodes=%d is %d GPU(s) on each of %d node(s), %d in all. This "
            "cluster's nodes have GPUs: %s, so a job on %d node(s) can have at most %d GPU(s) per node: ask for "
            "gpus_per_node 0 to %d%s." % (
                gpus_per_node, nodes, gpus_per_node, nodes, gpus_per_node * nodes, sizes, nodes, most, most,
                "" if nodes == 1 or max(node_gpus) <= most else
                ", or for fewer nodes (nodes=1 allows up to %d per node)" % max(node_gpus)) + NOTHING)

    job_name = _given(raw, "job_name")
    if job_name is not None:
        job_name = _plain(str(job_name))
        if len(job_name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in job_name):
            raise Refusal("job_name must be one line of at most 200 printable characters." + NOTHING)
    partition = _given(raw, "partition")
    if partition is not None and not PARTITION.match(str(partition)):
        raise Refusal("partition '%s' is not a Slurm partition name (letters, digits, '_', '.', '-')."
                      % _plain(str(partition))[:70] + NOTHING)
    time = _given(raw, "time")
    if time is not None:
        try:
            validate_time_spec(_plain(str(time)).strip())  # the same rule as the slurm_job module's
        except ValueError as err:
            raise Refusal("%s." % err + NOTHING) from None
    wait = _flag(raw, "wait", FLAGS["wait"])
    wait_timeout = _count(raw, "wait_timeout", *COUNTS["wait_timeout"], 10 ** 6, "wait_timeout is a number of seconds.")

    return {
        "script_text": text,
        "script_name": name,
        "job_name": job_name if job_name is not None else name,
        "nodes": nodes,
        "ntasks": ntasks,
        "gpus_per_node": gpus_per_node,
        "gpus_total": gpus_per_node * nodes,
        "partition": _plain(str(partition)) if partition is not None else None,
        "time": _plain(str(time)).strip() if time is not None else None,
        "wait": wait,
        "wait_timeout": wait_timeout,
    }


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("node_gpus", "max_script_bytes", "state_dirs", "multi_node"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        node_gpus = args.get("node_gpus")
        if not isinstance(node_gpus, (list, tuple)):
            result.update(failed=True, msg="job_request needs node_gpus: a list of the GPU count of each of the "
                                           "cluster's nodes (e.g. [2, 1])")
            return result
        try:
            node_gpus = [int(count) for count in node_gpus]
            max_bytes = int(args.get("max_script_bytes", 1048576))
            multi_node = boolean(args.get("multi_node", True), strict=True)
        except (TypeError, ValueError):
            result.update(failed=True, msg="node_gpus must be a list of whole numbers, max_script_bytes an integer, "
                                           "multi_node a boolean")
            return result
        if any(count < 0 for count in node_gpus):
            result.update(failed=True, msg="node_gpus must hold GPU counts of 0 or more, not %s" % node_gpus)
            return result
        state_dirs = [str(d) for d in args.get("state_dirs") or []]
        raw = {name: task_vars.get(name) for name in (*INPUTS, *RENAMED)}
        under_awx = any(name in task_vars for name in ("awx_job_id", "tower_job_id"))
        cwd = os.getcwd()
        try:
            request = check(raw, node_gpus, max_bytes, state_dirs, cwd, under_awx, multi_node)
        except Refusal as refusal:
            result.update(failed=True, msg=str(refusal))
            return wrap_var(result)
        result.update(changed=False, request=request)
        return wrap_var(result)
