"""The repository as an AWX project: what AWX gives a job must work with the
project's own configuration, and no playbook may wait for a terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTION = REPO / "collections" / "ansible_collections" / "gpuops" / "platform"


def test_awx_job_inventory_parses_with_the_project_config(tmp_path):
    """AWX hands every job its inventory as inventory/hosts, a script printing JSON
    (awx/main/tasks/jobs.py build_inventory); ansible.cfg's enable_plugins must let
    the script plugin read it, or the job sees no host at all."""
    data = {
        "all": {"children": ["ungrouped", "gpu_pods", "slurm_controller", "slurm_compute"]},
        "gpu_pods": {"hosts": ["gpuops-0", "gpuops-1"]},
        "slurm_controller": {"hosts": ["gpuops-0"]},
        "slurm_compute": {"hosts": ["gpuops-0", "gpuops-1"]},
        "_meta": {"hostvars": {"gpuops-0": {"ansible_host": "192.0.2.10", "ansible_port": 10341},
                               "gpuops-1": {"ansible_host": "192.0.2.11", "ansible_port": 10342}}},
    }
    hosts = tmp_path / "inventory" / "hosts"
    hosts.parent.mkdir()
    hosts.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data))
    hosts.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_INVENTORY")}
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    result = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(hosts), "--list"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert sorted(parsed["_meta"]["hostvars"]) == ["gpuops-0", "gpuops-1"], (
        "ansible.cfg [inventory] enable_plugins does not include ansible.builtin.script, so an AWX job "
        f"would see no host: {result.stderr.strip()}"
    )
    assert parsed["slurm_controller"]["hosts"] == ["gpuops-0"]


def _tasks(node):
    """Every task-like mapping (plays, tasks, blocks, handlers) in a YAML document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _tasks(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tasks(value)


def test_no_playbook_or_role_waits_for_a_terminal():
    """An AWX job has no terminal: vars_prompt or an interactive pause would hang it."""
    files = [*REPO.glob("*.yml"), *(REPO / "playbooks").glob("*.yml"), *(COLLECTION / "roles").rglob("*.yml")]
    assert len(files) > 10
    offenders = []
    for path in files:
        for node in _tasks(yaml.safe_load(path.read_text()) or []):
            if "vars_prompt" in node:
                offenders.append(f"{path.relative_to(REPO)}: vars_prompt")
            for pause in ("ansible.builtin.pause", "pause"):
                args = node.get(pause)
                if pause in node and not (isinstance(args, dict) and ({"seconds", "minutes"} & set(args))):
                    offenders.append(f"{path.relative_to(REPO)}: {node.get('name', pause)} waits for input")
    assert not offenders, offenders
