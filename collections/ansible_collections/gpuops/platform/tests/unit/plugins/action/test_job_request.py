# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of gpuops.platform.job_request: GPUs are asked for per node (gpus_per_node), never as `gpus`.

`check()` is the whole rule; two tests run the action plugin for real in ansible-playbook on localhost, with the
request given as extra vars, as submit_job.yml gets it.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from ansible_collections.gpuops.platform.plugins.action.job_request import COUNTS, INPUTS, Refusal, check, gpus_per_node_limit

SCRIPT = "#!/bin/bash\nnvidia-smi\n"
COLLECTIONS = pathlib.Path(__file__).resolve().parents[7]  # the directory that holds ansible_collections/


def request(node_gpus, **raw):
    return check(dict(script=SCRIPT, **raw), node_gpus, 1048576, [], "/", False)


def refusal(node_gpus, **raw) -> str:
    with pytest.raises(Refusal) as err:
        request(node_gpus, **raw)
    return str(err.value)


def test_gpus_per_node_is_per_node_and_the_total_is_nodes_times_it():
    got = request([2, 2], nodes=2, gpus_per_node=2)
    assert (got["nodes"], got["gpus_per_node"], got["gpus_total"]) == (2, 2, 4)
    assert "gpus" not in got
    got = request([2, 2], nodes="2", gpus_per_node="1")  # extra vars come as text
    assert (got["gpus_per_node"], got["gpus_total"]) == (1, 2)


def test_the_defaults_ask_for_one_node_and_no_gpu():
    got = request([1])
    assert (got["nodes"], got["gpus_per_node"], got["gpus_total"]) == (1, 0, 0)
    assert COUNTS["gpus_per_node"] == (0, 0)
    assert "gpus_per_node" in INPUTS and "gpus" not in INPUTS


@pytest.mark.parametrize("raw", [dict(gpus=2), dict(gpus="1", gpus_per_node=1), dict(gpus=0)])
def test_gpus_is_refused_by_name_with_the_name_to_use(raw):
    message = refusal([2, 2], nodes=1, **raw)
    assert message.startswith("gpus is not an input of a job request")
    assert "gpus_per_node=N" in message and "nodes x N in all" in message
    assert message.endswith("Nothing was submitted.")


def test_gpus_given_empty_as_an_old_awx_survey_sends_it_counts_as_not_given():
    assert request([1], gpus="", gpus_per_node=1)["gpus_per_node"] == 1


def test_more_gpus_per_node_than_any_node_has_is_refused():
    message = refusal([2, 2], nodes=2, gpus_per_node=3)
    assert message == (
        "Impossible request: gpus_per_node=3 with nodes=2 is 3 GPU(s) on each of 2 node(s), 6 in all. This cluster's "
        "nodes have GPUs: 2, 2, so a job on 2 node(s) can have at most 2 GPU(s) per node: ask for gpus_per_node 0 to 2. "
        "Nothing was submitted.")


def test_the_limit_is_the_nodes_th_largest_node():
    """Nodes of 4, 2 and 1 GPUs: 4 per node fits one node only, 2 per node two nodes, 1 per node three."""
    assert [gpus_per_node_limit([1, 4, 2], n) for n in (1, 2, 3)] == [4, 2, 1]
    assert request([1, 4, 2], nodes=1, gpus_per_node=4)["gpus_total"] == 4
    assert request([1, 4, 2], nodes=2, gpus_per_node=2)["gpus_total"] == 4
    message = refusal([1, 4, 2], nodes=2, gpus_per_node=4)
    assert "nodes have GPUs: 4, 2, 1, so a job on 2 node(s) can have at most 2 GPU(s) per node" in message
    assert "or for fewer nodes (nodes=1 allows up to 4 per node)" in message


def test_a_cluster_total_is_no_limit():
    """Two one-GPU pods hold 2 GPUs, but no node has 2: Slurm refuses --nodes=1 --gpus=2 there (recorded in
    fixtures/slurm/24.11/sbatch_test_only_gpus_one_node.json), and so must the request."""
    recorded = json.loads((pathlib.Path(__file__).parents[1] / "module_utils/fixtures/slurm/24.11/"
                           "sbatch_test_only_gpus_one_node.json").read_text())
    assert recorded["rc"] == 1 and "Requested node configuration is not available" in recorded["stderr"]
    assert "can have at most 1 GPU(s) per node" in refusal([1, 1], nodes=1, gpus_per_node=2)
    assert request([1, 1], nodes=2, gpus_per_node=1)["gpus_total"] == 2


@pytest.mark.parametrize("value", [-1, "1.5", "two", True])
def test_gpus_per_node_must_be_a_whole_number(value):
    message = refusal([2], gpus_per_node=value)
    assert message.startswith("Impossible request: gpus_per_node=")
    assert "gpus_per_node (GPUs on each of the job's nodes) 0 to 2" in message


def test_nodes_are_bounded_by_the_nodes_listed():
    message = refusal([1, 1], nodes=3)
    assert message == ("Impossible request: nodes=3. This cluster has 2 node(s), with GPUs: 1, 1. nodes must be 1 to 2, "
                       "ntasks at least 1, gpus_per_node (GPUs on each of the job's nodes) 0 to 1. Nothing was submitted.")


# -- the action plugin in a real run -----------------------------------------------------


def run_playbook(tmp_path, node_gpus, *extra: str) -> dict:
    """The job_request task's result, as the playbook registered it (written out as JSON by the next task)."""
    playbook, out = tmp_path / "request.yml", tmp_path / "result.json"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - gpuops.platform.job_request:\n        node_gpus: %s\n      register: r\n      ignore_errors: true\n"
        "    - ansible.builtin.copy:\n        content: '{{ r | to_json }}'\n        dest: %s\n        mode: '0600'\n"
        % (json.dumps(node_gpus), json.dumps(str(out))))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    done = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(playbook),
                           "-e", json.dumps({"script": SCRIPT}), *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.is_file(), done.stdout + done.stderr
    return json.loads(out.read_text())


def test_the_action_plugin_returns_gpus_per_node_and_the_total(tmp_path):
    result = run_playbook(tmp_path, [2, 2], "-e", "nodes=2", "-e", "gpus_per_node=2")
    assert not result.get("failed"), result
    assert (result["request"]["gpus_per_node"], result["request"]["gpus_total"]) == (2, 4)


def test_the_action_plugin_refuses_gpus_by_name(tmp_path):
    result = run_playbook(tmp_path, [2, 2], "-e", "gpus=2")
    assert result["failed"] is True
    assert result["msg"].startswith("gpus is not an input of a job request")


def test_the_action_plugin_needs_each_nodes_gpus(tmp_path):
    playbook_result = run_playbook(tmp_path, "2")
    assert playbook_result["failed"] is True
    assert "job_request needs node_gpus: a list of the GPU count of each of the cluster's nodes" in playbook_result["msg"]
