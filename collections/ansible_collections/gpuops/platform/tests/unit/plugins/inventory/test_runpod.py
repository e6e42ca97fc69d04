# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests of the gpuops.platform.runpod inventory plugin.

Terraform is a fake executable that prints a recorded ``terraform output -json``,
RunPod is a real HTTP server on 127.0.0.1 that answers ``GET /v2/pods/{id}``
and ``GET /v2/pods`` with the pods of ``fixtures/`` (see its README.md: RunPod's
own v2 examples, or recordings of the local cloud, made by
``tests/fixtures/record_inventory_fixtures.py``). Pod names, ids, indexes, GPU
types and counts are read from them and from the recorded Terraform output,
never written here.
"""

from __future__ import annotations

import datetime
import json
import os
import time

import pytest
import yaml

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar
from ansible.utils.unsafe_proxy import AnsibleUnsafe

try:  # ansible-core >= 2.19 (data tagging)
    from ansible.template import is_trusted_as_template, trust_as_template
except ImportError:  # older ansible-core: unsafe is a type
    is_trusted_as_template = None
    trust_as_template = None


PLUGIN = "gpuops.platform.runpod"
SENSITIVE_OUTPUT_FILE = "terraform_output_sensitive.json"


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def tf_output(load_fixture):
    """``terraform output -json`` of terraform/runpod (no sensitive output)."""
    return load_fixture("terraform_output.json")


@pytest.fixture
def tf_output_sensitive(load_fixture):
    """``terraform output -json`` of a root module with the same pods plus a sensitive output."""
    return load_fixture(SENSITIVE_OUTPUT_FILE)


@pytest.fixture
def pod_specs(tf_output):
    return tf_output["pods"]["value"]


@pytest.fixture
def first_pod(load_fixture):
    """Name of the pod the recording followed while it started (pod_running.json)."""
    return load_fixture("pod_running.json")["name"]


@pytest.fixture
def other_pods(pod_specs, first_pod):
    """Names of the other pods of the recording, sorted."""
    names = sorted(name for name in pod_specs if name != first_pod)
    assert len(names) >= 2, "the recording must hold at least two other pods"
    return names


def _as_pod(pod, name, spec):
    """The fixture POD made into pod NAME with the id from Terraform."""
    pod.update(id=spec["id"], name=name)
    if pod.get("globalNetworking", {}).get("internalDns"):
        pod["globalNetworking"] = dict(pod["globalNetworking"], internalDns="%s.runpod.internal" % spec["id"])
    return pod


def running(load_fixture, name, spec, index):
    """The running pod of the fixtures, made into pod NAME (id from Terraform) with an SSH port of its own.

    The fixture's own pod (the first pod) is served exactly as it is.
    """
    pod = load_fixture("pod_running.json")
    if (pod["id"], pod["name"]) != (spec["id"], name):
        port = pod["ssh"]["direct"]["port"] + 1 + index
        pod["ssh"]["direct"]["port"] = port
        for mapping in pod["runtime"]["ports"]:
            if mapping["private"] == 22:
                mapping["public"] = port
        _as_pod(pod, name, spec)
    return pod


def in_state(load_fixture, state, name, spec):
    return _as_pod(load_fixture("pod_%s.json" % state), name, spec)


@pytest.fixture
def all_running(runpod_api, pod_specs, load_fixture):
    """Serve every pod of the Terraform fixture as RUNNING; return name -> Pod reply."""
    replies = {}
    for index, (name, spec) in enumerate(sorted(pod_specs.items())):
        replies[name] = running(load_fixture, name, spec, index)
        runpod_api.set_pod(spec["id"], replies[name])
    return replies


@pytest.fixture
def site(tmp_path, fake_terraform, fixtures_dir, runpod_api):
    """A project layout like the repository's: inventories/<cloud>/runpod.yml next to terraform/ and .gpuops/."""
    root = tmp_path / "repo"
    (root / "terraform" / "runpod").mkdir(parents=True)
    (root / "inventories" / "local").mkdir(parents=True)
    (root / ".gpuops" / "localcloud").mkdir(parents=True)
    (root / ".gpuops" / "localcloud" / "api_key").write_text("test-key\n")

    class Site:
        path = root
        inventory_dir = root / "inventories" / "local"
        terraform = fake_terraform
        api = runpod_api

        def config(self, name="runpod.yml", tf_output_file=None, tf_mode="output", **options):
            env = fake_terraform.env(tf_output_file or fixtures_dir / "terraform_output.json", mode=tf_mode)
            env["TF_DATA_DIR"] = "../../.gpuops/local/terraform/data"
            data = {
                "plugin": PLUGIN,
                "project_path": "../../terraform/runpod",
                "state_file": "../../.gpuops/local/terraform/terraform.tfstate",
                "terraform_binary": str(fake_terraform.path),
                "terraform_env": env,
                "base_url": runpod_api.base_url,
                "api_key_file": "../../.gpuops/localcloud/api_key",
                "private_key_file": "../../.gpuops/local/ssh/id_ed25519",
                "wait_timeout": 5,
                "poll_interval": 0.05,
                "request_timeout": 5,
            }
            data.update(options)
            data = {k: v for k, v in data.items() if v is not None}
            path = self.inventory_dir / name
            path.write_text(yaml.safe_dump(data), encoding="utf-8")
            return path

    return Site()


def parse(config_path, cache=True):
    """Run the plugin as ansible-inventory does; return (inventory, plugin)."""
    plugin = inventory_loader.get(PLUGIN)
    assert plugin.verify_file(str(config_path))
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(config_path), cache=cache)
    if plugin.get_option("cache"):
        plugin.update_cache_if_changed()
    return inventory, plugin


def parse_error(config_path):
    with pytest.raises(AnsibleParserError) as err:
        parse(config_path)
    return str(err.value)


ERROR_VAR = "runpod_inventory_error"


def inventory_error(config_path, cache=True):
    """Parse a deployment whose pods the cloud cannot give now: no exception, no pod host, the groups empty.

    Return the message of the group variable runpod_inventory_error (set on the group all).
    """
    inventory, _plugin = parse(config_path, cache=cache)
    assert not inventory.hosts, "no pod host may be built: %s" % sorted(inventory.hosts)
    assert hosts_of(inventory, "gpu_pods") == []
    assert not made_for_slurm(inventory)
    message = inventory.groups["all"].get_vars()[ERROR_VAR]
    assert untrusted(message), "the message quotes the API: it must never be templated"
    return str(message)


def hosts_of(inventory, group):
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def made_for_slurm(inventory):
    """Groups named after Slurm: the plugin describes pods and makes none (the configuration's groups do)."""
    return sorted(group for group in inventory.groups if "slurm" in group)


def members(inventory, group):
    """Hosts of a constructed group; a group no host matched is not created at all."""
    return hosts_of(inventory, group) if group in inventory.groups else []


def everything(inventory):
    """All host and group variables as one string."""
    dump = {"hosts": {h: inventory.get_host(h).get_vars() for h in inventory.hosts},
            "groups": {g: inventory.groups[g].get_vars() for g in inventory.groups}}
    return json.dumps(dump, default=str)


def untrusted(value):
    if is_trusted_as_template is not None:
        return not is_trusted_as_template(value)
    return isinstance(value, AnsibleUnsafe)


# -- verify_file -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["runpod.yml", "runpod.yaml", "prod.runpod.yml", "gpuops_runpod.yaml"])
def test_verify_file_accepts(tmp_path, name):
    path = tmp_path / name
    path.write_text("plugin: %s\n" % PLUGIN)
    assert inventory_loader.get(PLUGIN).verify_file(str(path))


@pytest.mark.parametrize("name", ["inventory.yml", "runpod.json", "runpod.yml.bak", "hosts"])
def test_verify_file_declines_and_says_why(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_text("plugin: %s\n" % PLUGIN)
    plugin = inventory_loader.get(PLUGIN)
    said = []
    monkeypatch.setattr(plugin.display, "vvv", said.append)
    assert not plugin.verify_file(str(path))
    assert any("runpod.yml or runpod.yaml" in line and str(path) in line for line in said)


def test_verify_file_declines_missing_file(tmp_path, monkeypatch):
    plugin = inventory_loader.get(PLUGIN)
    said = []
    monkeypatch.setattr(plugin.display, "vvv", said.append)
    assert not plugin.verify_file(str(tmp_path / "runpod.yml"))
    assert any("not readable" in line for line in said)


# -- the recordings ------------------------------------------------------------------


def test_recordings_belong_together(tf_output, tf_output_sensitive, pod_specs, first_pod, load_fixture):
    """One recording run: a partial re-record (or a hand edit) shows here first."""
    assert not any(entry["sensitive"] for entry in tf_output.values())
    assert tf_output_sensitive["pods"] == tf_output["pods"]
    assert any(entry["sensitive"] for entry in tf_output_sensitive.values())
    # terraform/runpod describes pods only: each has the index in its name, none a role.
    assert {name: spec["index"] for name, spec in pod_specs.items()} == {
        name: int(name.rsplit("-", 1)[1]) for name in pod_specs}
    assert not any("role" in spec for spec in pod_specs.values())

    running_pod = load_fixture("pod_running.json")
    assert (running_pod["name"], running_pod["id"]) == (first_pod, pod_specs[first_pod]["id"])
    assert running_pod["status"] == "RUNNING"
    assert running_pod["ssh"]["direct"]["host"] and running_pod["ssh"]["direct"]["port"]
    assert running_pod["startedAt"]

    for state in ("provisioning", "starting"):
        pod = load_fixture("pod_%s.json" % state)
        assert pod["id"] == running_pod["id"] and pod["status"] == state.upper()
        assert pod["ssh"]["direct"] is None

    for state in ("exited", "error", "terminated"):
        pod = load_fixture("pod_%s.json" % state)
        assert pod_specs[pod["name"]]["id"] == pod["id"] and pod["status"] == state.upper()
        assert pod["ssh"]["direct"] is None and pod["cost"] == 0


# -- the inventory -----------------------------------------------------------------


def test_groups_and_host_vars(site, all_running, pod_specs):
    inventory, _plugin = parse(site.config())

    names = sorted(pod_specs)
    assert hosts_of(inventory, "gpu_pods") == names
    # The plugin's one group; what the pods are for (Slurm nodes) is the configuration's business.
    assert sorted(inventory.groups) == ["all", "gpu_pods", "ungrouped"]

    key_file = str(site.path / ".gpuops" / "local" / "ssh" / "id_ed25519")
    for name in names:
        reply, spec = all_running[name], pod_specs[name]
        hostvars = inventory.get_host(name).get_vars()
        assert hostvars["ansible_host"] == reply["ssh"]["direct"]["host"]
        assert hostvars["ansible_port"] == reply["ssh"]["direct"]["port"]
        assert hostvars["ansible_user"] == "root"
        assert hostvars["ansible_ssh_private_key_file"] == key_file
        assert hostvars["runpod_pod_id"] == spec["id"]
        assert hostvars["runpod_pod_name"] == reply["name"]
        assert hostvars["runpod_pod_index"] == spec["index"]
        assert hostvars["runpod_gpu_type_id"] == spec["gpu_type_id"]
        assert hostvars["runpod_gpu_count"] == spec["gpu_count"]
        assert hostvars["runpod_cost_per_hr"] == reply["cost"]
        assert hostvars["runpod_status"] == "RUNNING"
        assert hostvars["runpod_cloud"] == reply["cloud"]
        assert hostvars["runpod_data_center_id"] == reply["dataCenterId"]
        assert hostvars["runpod_image"] == reply["image"]
        assert hostvars["runpod_global_networking"] == {
            "enabled": True, "ip": reply["globalNetworking"]["ip"], "internal_dns": "%s.runpod.internal" % spec["id"]}
        assert hostvars["runpod_started_at"] == reply["startedAt"]
        assert hostvars["runpod_host_key_alias"] == "runpod-%s-%d" % (
            spec["id"], datetime.datetime.fromisoformat(reply["startedAt"].replace("Z", "+00:00")).timestamp())
        assert not any(var in hostvars for var in ("name", "tags", "id", "image", "runpod_public_ip",
                                                   "runpod_port_mappings", "runpod_interruptible", "runpod_role"))


def test_each_request_carries_the_key_from_api_key_file(site, all_running):
    parse(site.config())
    assert site.api.requests
    assert all(auth == "Bearer test-key" for _method, _path, auth in site.api.requests)


def test_ssh_user_and_no_private_key(site, all_running, first_pod):
    inventory, _plugin = parse(site.config(ssh_user="ubuntu", private_key_file=None))
    hostvars = inventory.get_host(first_pod).get_vars()
    assert hostvars["ansible_user"] == "ubuntu"
    assert "ansible_ssh_private_key_file" not in hostvars


def test_terraform_call_paths_are_relative_to_the_inventory_file(site, all_running):
    parse(site.config())
    call = site.terraform.calls()[-1]
    state = site.path / ".gpuops" / "local" / "terraform" / "terraform.tfstate"
    assert call["argv"] == ["output", "-json", "-no-color", "-state=%s" % state]
    assert call["cwd"] == str(site.path / "terraform" / "runpod")
    assert call["env"]["TF_DATA_DIR"] == str(site.path / ".gpuops" / "local" / "terraform" / "data")
    assert call["env"]["FAKE_TF_MODE"] == "output"  # other terraform_env entries pass as they are


def test_terraform_binary_from_path_and_env(site, all_running, first_pod, monkeypatch):
    monkeypatch.setenv("PATH", str(site.terraform.bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    inventory, _plugin = parse(site.config(terraform_binary=None))
    assert first_pod in inventory.hosts

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("GPUOPS_TERRAFORM", str(site.terraform.path))
    inventory, _plugin = parse(site.config(terraform_binary=None))
    assert first_pod in inventory.hosts


def test_key_and_base_url_from_environment(site, all_running, first_pod, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "test-key")
    monkeypatch.setenv("RUNPOD_BASE_URL", site.api.base_url)
    inventory, _plugin = parse(site.config(api_key_file=None, base_url=None))
    assert first_pod in inventory.hosts


@pytest.mark.parametrize("output_file", ["terraform_output.json", SENSITIVE_OUTPUT_FILE])
def test_non_sensitive_outputs_become_runpod_outputs(site, all_running, fixtures_dir, load_fixture, output_file):
    inventory, _plugin = parse(site.config(tf_output_file=fixtures_dir / output_file))
    outputs = inventory.groups["gpu_pods"].get_vars()["runpod_outputs"]
    recorded = load_fixture(output_file)
    expected = {name: entry["value"] for name, entry in recorded.items() if not entry["sensitive"] and name != "pods"}
    assert expected, "the recording must hold non-sensitive outputs besides pods"
    assert outputs == expected


def test_sensitive_outputs_never_become_variables(site, all_running, fixtures_dir, tf_output_sensitive, pod_specs):
    inventory, _plugin = parse(site.config(tf_output_file=fixtures_dir / SENSITIVE_OUTPUT_FILE))
    assert hosts_of(inventory, "gpu_pods") == sorted(pod_specs)
    sensitive = {name: entry["value"] for name, entry in tf_output_sensitive.items() if entry["sensitive"]}
    assert sensitive, "the fixture must hold a sensitive output"
    dump = everything(inventory)
    for name, value in sensitive.items():
        assert name not in dump
        assert json.dumps(value).strip('"') not in dump


def test_waits_for_provisioning_and_starting_pods(site, pod_specs, first_pod, other_pods, load_fixture):
    names = sorted(pod_specs)
    for index, name in enumerate(names):
        spec = pod_specs[name]
        ready = running(load_fixture, name, spec, index)
        if name == first_pod:
            site.api.set_pod(spec["id"], ready)
        else:
            site.api.set_pod(spec["id"], in_state(load_fixture, "provisioning", name, spec),
                             *[in_state(load_fixture, "starting", name, spec)] * 2 + [ready])
    inventory, _plugin = parse(site.config(poll_interval=0.05))

    assert hosts_of(inventory, "gpu_pods") == names
    assert all(inventory.get_host(name).get_vars()["ansible_port"] for name in names)
    # ready pods are not asked again; pending pods are polled together, round by round
    assert site.api.gets(pod_specs[first_pod]["id"]) == 1
    assert [site.api.gets(pod_specs[name]["id"]) for name in other_pods] == [4] * len(other_pods)


def test_timeout_names_the_pending_pods_and_their_status(site, pod_specs, first_pod, other_pods, load_fixture):
    states = {other_pods[0]: "provisioning", other_pods[1]: "starting"}
    for index, (name, spec) in enumerate(sorted(pod_specs.items())):
        reply = running(load_fixture, name, spec, index) if name == first_pod else in_state(load_fixture, states[name], name, spec)
        site.api.set_pod(spec["id"], reply)
    started = time.monotonic()
    message = inventory_error(site.config(wait_timeout=1, poll_interval=0.2))
    elapsed = time.monotonic() - started

    assert "timed out after 1s" in message
    assert "wait_timeout" in message and "ssh.direct" in message
    # the message lists every pod of the state, then why: only the pending ones are waited for
    assert first_pod not in message.split("Why: ", 1)[1]
    for name, state in states.items():
        assert "%s (%s, %s)" % (name, pod_specs[name]["id"], state.upper()) in message
    # one deadline for all pods, not one per pod
    assert elapsed < 3


def test_a_running_pod_without_ssh_direct_is_waited_for(site, all_running, pod_specs, other_pods):
    name = other_pods[0]
    reply = dict(all_running[name], ssh={"proxy": all_running[name]["ssh"]["proxy"], "direct": None})
    site.api.set_pod(pod_specs[name]["id"], reply)
    message = inventory_error(site.config(wait_timeout=0))
    assert "%s (%s, RUNNING, no ssh.direct yet)" % (name, pod_specs[name]["id"]) in message
    assert "22/tcp" in message and "image starts sshd" in message


def test_wait_timeout_0_asks_once(site, pod_specs, load_fixture):
    for name, spec in pod_specs.items():
        site.api.set_pod(spec["id"], in_state(load_fixture, "provisioning", name, spec))
    message = inventory_error(site.config(wait_timeout=0))
    assert "timed out after 0s" in message
    assert all(site.api.gets(spec["id"]) == 1 for spec in pod_specs.values())


@pytest.mark.parametrize("state", ["exited", "terminated"])
def test_stopped_pod_is_an_error(site, all_running, pod_specs, other_pods, load_fixture, state):
    name = other_pods[0]
    spec = pod_specs[name]
    site.api.set_pod(spec["id"], in_state(load_fixture, state, name, spec))
    message = inventory_error(site.config())
    expected = "pod %s (%s) is %s: start it or re-run ansible-playbook playbooks/provision.yml" % (name, spec["id"], state.upper())
    assert expected in message


def test_a_pod_in_error_is_reported_clearly(site, all_running, pod_specs, other_pods, load_fixture):
    name = other_pods[0]
    spec = pod_specs[name]
    site.api.set_pod(spec["id"], in_state(load_fixture, "error", name, spec))
    message = inventory_error(site.config())
    assert "pod %s (%s) is in ERROR" % (name, spec["id"]) in message
    assert "logs" in message and "playbooks/provision.yml" in message


def test_pod_gone_from_the_api(site, all_running, pod_specs, other_pods):
    name = other_pods[-1]
    spec = pod_specs[name]
    del site.api.pods[spec["id"]]
    message = inventory_error(site.config())
    assert "pod %s (%s)" % (name, spec["id"]) in message
    assert "404" in message and "deleted outside Terraform" in message
    assert "playbooks/provision.yml" in message


def test_wrong_key(site, all_running):
    message = inventory_error(site.config(api_key="rpa_WRONG_KEY_MUST_NOT_LEAK", api_key_file=None))
    assert "RUNPOD_API_KEY" in message
    assert "401" in message
    assert "rpa_WRONG_KEY_MUST_NOT_LEAK" not in message


def test_api_unreachable(site, closed_port_url):
    message = inventory_error(site.config(base_url=closed_port_url))
    assert closed_port_url in message
    assert "python -m localcloud start" in message


def test_no_api_key(site, all_running):
    message = inventory_error(site.config(api_key_file=None))
    assert "RUNPOD_API_KEY" in message and "api_key_file" in message


def test_missing_api_key_file(site, all_running):
    message = inventory_error(site.config(api_key_file="../../.gpuops/localcloud/nope"))
    assert str(site.path / ".gpuops" / "localcloud" / "nope") in message
    assert "localcloud start" in message


def test_missing_state_warn_builds_empty_groups_and_says_why(site, monkeypatch):
    warnings = []
    plugin = inventory_loader.get(PLUGIN)
    monkeypatch.setattr(type(plugin.display), "warning", lambda self, msg, *a, **k: warnings.append(msg))
    inventory, _plugin = parse(site.config(tf_mode="empty", missing_state="warn"))
    assert hosts_of(inventory, "gpu_pods") == []
    assert not made_for_slurm(inventory)
    assert len(warnings) == 1 and "run ansible-playbook playbooks/provision.yml first" in warnings[0]
    assert not site.api.requests


def test_missing_state_warn_still_fails_on_real_errors(site):
    assert "`terraform output` for" in parse_error(site.config(tf_mode="fail", missing_state="warn"))


def test_no_terraform_state(site):
    message = parse_error(site.config(tf_mode="empty"))
    state = site.path / ".gpuops" / "local" / "terraform" / "terraform.tfstate"
    assert "no Terraform state at %s: run ansible-playbook playbooks/provision.yml first" % state in message
    assert not site.api.requests


def test_no_pods_output(site, tmp_path, tf_output):
    del tf_output["pods"]
    output = tmp_path / "no_pods.json"
    output.write_text(json.dumps(tf_output))
    message = parse_error(site.config(tf_output_file=output))
    assert "no Terraform state at" in message and "'pods'" in message
    assert "playbooks/provision.yml" in message


def test_other_output_name(site, all_running, tmp_path, tf_output, first_pod):
    tf_output["gpu_pods"] = tf_output.pop("pods")
    output = tmp_path / "renamed.json"
    output.write_text(json.dumps(tf_output))
    inventory, _plugin = parse(site.config(tf_output_file=output, output_name="gpu_pods"))
    assert first_pod in hosts_of(inventory, "gpu_pods")
    assert "gpu_pods" not in inventory.groups["gpu_pods"].get_vars()["runpod_outputs"]


def test_terraform_missing(site):
    message = parse_error(site.config(terraform_binary="../../.venv/bin/terraform"))
    assert "make setup" in message
    assert str(site.path / ".venv" / "bin" / "terraform") in message


def test_terraform_failure(site):
    message = parse_error(site.config(tf_mode="fail"))
    assert "Backend initialization required" in message


def _output_with(tmp_path, tf_output, change):
    """The recorded Terraform output, with change(pods) applied, as a file."""
    change(tf_output["pods"]["value"])
    output = tmp_path / "changed_output.json"
    output.write_text(json.dumps(tf_output))
    return output


@pytest.mark.parametrize("index, expected", [
    (-1, "not a whole number from 0"),
    ("1", "not a whole number from 0"),
    (1.5, "not a whole number from 0"),
    (True, "not a whole number from 0"),
    ("same", "have the same index"),
])
def test_a_bad_or_shared_index_is_a_parser_error(site, all_running, tmp_path, tf_output, other_pods, index, expected):
    def change(pods):
        pods[other_pods[0]]["index"] = pods[other_pods[1]]["index"] if index == "same" else index

    message = parse_error(site.config(tf_output_file=_output_with(tmp_path, tf_output, change)))
    assert expected in message and other_pods[0] in message and "Terraform output 'pods'" in message
    assert not site.api.requests


def test_an_output_without_index_gives_no_pod_index(site, all_running, tmp_path, tf_output, pod_specs):
    """Another Terraform module's pod map: pods without index are fine, and have no runpod_pod_index."""
    def change(pods):
        for spec in pods.values():
            del spec["index"]

    inventory, _plugin = parse(site.config(tf_output_file=_output_with(tmp_path, tf_output, change)))
    assert hosts_of(inventory, "gpu_pods") == sorted(pod_specs)
    assert not any("runpod_pod_index" in inventory.get_host(name).get_vars() for name in pod_specs)


def _indexes(inventory):
    return {name: inventory.get_host(name).get_vars()["runpod_pod_index"] for name in inventory.hosts}


@pytest.mark.parametrize("how", ["stopped", "deleted", "out of the state"])
def test_a_pod_that_drops_out_moves_no_other_pods_index(site, all_running, pod_specs, other_pods, load_fixture,
                                                        tmp_path, tf_output, how):
    """Each pod keeps its index (and so its tunnel ports and address) when a pod before it goes.

    The pod that drops out is the middle one of the sorted names: the position of every later pod moves.
    """
    before, _plugin = parse(site.config(unavailable_pods="warn"), cache=False)
    names = sorted(pod_specs)
    middle = names[len(names) // 2]
    assert 0 < names.index(middle) < len(names) - 1
    config = {"unavailable_pods": "warn"}
    if how == "stopped":
        site.api.set_pod(pod_specs[middle]["id"], in_state(load_fixture, "exited", middle, pod_specs[middle]))
    elif how == "deleted":
        del site.api.pods[pod_specs[middle]["id"]]
    else:
        config["tf_output_file"] = _output_with(tmp_path, tf_output, lambda pods: pods.pop(middle))
    after, _plugin = parse(site.config(**config), cache=False)

    assert sorted(after.hosts) == [name for name in names if name != middle]
    assert _indexes(after) == {name: index for name, index in _indexes(before).items() if name != middle}
    # and each index is the pod's own, not its position
    assert _indexes(after) == {name: pod_specs[name]["index"] for name in after.hosts}
    assert [_indexes(after)[name] for name in sorted(after.hosts)] != list(range(len(after.hosts)))


def test_a_replaced_pod_takes_its_index_over(site, all_running, pod_specs, other_pods, tmp_path, tf_output,
                                             load_fixture):
    """Terraform replaces a pod under the same name (new id): the replacement has the same index."""
    name = other_pods[0]
    new_id = "replacement0001"
    spec = dict(pod_specs[name], id=new_id)
    site.api.set_pod(new_id, running(load_fixture, name, spec, 7))
    output = _output_with(tmp_path, tf_output, lambda pods: pods[name].update(id=new_id))
    inventory, _plugin = parse(site.config(tf_output_file=output), cache=False)
    hostvars = inventory.get_host(name).get_vars()
    assert hostvars["runpod_pod_id"] == new_id
    assert hostvars["runpod_pod_index"] == pod_specs[name]["index"]


def test_empty_pod_map(site, tmp_path, tf_output):
    tf_output["pods"]["value"] = {}
    output = tmp_path / "empty.json"
    output.write_text(json.dumps(tf_output))
    assert "lists no pods" in parse_error(site.config(tf_output_file=output))


# -- constructed -------------------------------------------------------------------


def test_keyed_groups_groups_and_compose(site, all_running, pod_specs, first_pod, other_pods):
    config = site.config(
        keyed_groups=[{"key": "runpod_gpu_type_id", "prefix": "gpu"}, {"key": "runpod_pod_index | string", "prefix": "index"}],
        groups={"multi_gpu": "runpod_gpu_count > 1", "single_gpu": "runpod_gpu_count == 1", "slurm_compute": True},
        compose={"hourly_cost": "runpod_cost_per_hr * 2", "ssh_target": "ansible_host ~ ':' ~ ansible_port"},
        strict=True,
    )
    inventory, _plugin = parse(config)

    by_type = {}
    for name, spec in pod_specs.items():
        by_type.setdefault("gpu_" + "".join(c if c.isalnum() else "_" for c in spec["gpu_type_id"]), []).append(name)
    for group, names in by_type.items():
        assert hosts_of(inventory, group) == sorted(names)
    for name, spec in pod_specs.items():
        assert hosts_of(inventory, "index_%d" % spec["index"]) == [name]
    assert hosts_of(inventory, "slurm_compute") == sorted(pod_specs)
    # terraform/runpod rents one GPU type and count per deployment: the recording
    # decides which of these groups is empty (an empty group is never created)
    assert members(inventory, "multi_gpu") == sorted(n for n, s in pod_specs.items() if s["gpu_count"] > 1)
    assert members(inventory, "single_gpu") == sorted(n for n, s in pod_specs.items() if s["gpu_count"] == 1)
    hostvars = inventory.get_host(first_pod).get_vars()
    assert hostvars["hourly_cost"] == pytest.approx(2 * all_running[first_pod]["cost"])
    direct = all_running[first_pod]["ssh"]["direct"]
    assert hostvars["ssh_target"] == "%s:%s" % (direct["host"], direct["port"])


def test_strict_compose_error(site, all_running, first_pod):
    with pytest.raises(AnsibleError):
        parse(site.config(compose={"broken": "no_such_var.attr"}, strict=True))
    inventory, _plugin = parse(site.config(compose={"broken": "no_such_var.attr"}, strict=False))
    assert "broken" not in inventory.get_host(first_pod).get_vars()


# -- unsafe ---------------------------------------------------------------------------


def test_api_values_are_never_templated(site, all_running, pod_specs, first_pod, tmp_path):
    pwned = tmp_path / "pwned"
    evil = "{{ lookup('pipe', 'touch %s') }}" % pwned
    reply = all_running[first_pod]
    reply.update(image=evil, env={"EVIL": evil})
    site.api.set_pod(pod_specs[first_pod]["id"], reply)
    inventory, _plugin = parse(site.config(compose={"image_copy": "runpod_image"}))

    hostvars = inventory.get_host(first_pod).get_vars()
    assert hostvars["image_copy"] == evil
    for var in ("runpod_image", "runpod_pod_id", "ansible_host", "runpod_gpu_type_id", "runpod_pod_name", "runpod_status"):
        assert untrusted(hostvars[var]), var
    outputs = inventory.groups["gpu_pods"].get_vars()["runpod_outputs"]
    assert outputs
    for name, value in outputs.items():
        assert untrusted(value), name

    template = "{{ runpod_image }}"
    if trust_as_template is not None:
        template = trust_as_template(template)
    assert Templar(loader=DataLoader(), variables=hostvars).template(template) == evil
    assert not pwned.exists()


# -- cache ---------------------------------------------------------------------------


def test_cache_hit_skips_terraform_and_api(site, all_running, tmp_path, fixtures_dir, tf_output_sensitive, pod_specs, first_pod):
    cache_dir = tmp_path / "cache"
    config = site.config(
        tf_output_file=fixtures_dir / SENSITIVE_OUTPUT_FILE,
        cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache_dir), cache_timeout=600,
    )

    first, _plugin = parse(config)
    calls, requests = len(site.terraform.calls()), len(site.api.requests)
    assert calls == 1 and requests == len(pod_specs)

    cached = "".join(p.read_text() for p in cache_dir.iterdir())
    assert "test-key" not in cached
    sensitive = {name: entry["value"] for name, entry in tf_output_sensitive.items() if entry["sensitive"]}
    assert sensitive, "the fixture must hold a sensitive output"
    for name, value in sensitive.items():
        assert name not in cached
        assert json.dumps(value).strip('"') not in cached

    site.api.pods.clear()  # the API would answer 404 now
    second, _plugin = parse(config, cache=True)
    assert len(site.terraform.calls()) == calls and len(site.api.requests) == requests
    assert everything(second) == everything(first)
    assert first_pod in hosts_of(second, "gpu_pods")

    # a refresh (cache=False, as with --flush-cache or meta: refresh_inventory) asks again
    assert "deleted outside Terraform" in inventory_error(config, cache=False)


def test_cache_values_are_untrusted_too(site, all_running, pod_specs, first_pod, tmp_path):
    evil = "{{ 6 * 7 }}"
    reply = all_running[first_pod]
    reply["image"] = evil
    site.api.set_pod(pod_specs[first_pod]["id"], reply)
    config = site.config(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"))
    parse(config)
    inventory, _plugin = parse(config, cache=True)
    assert inventory.get_host(first_pod).get_vars()["runpod_image"] == evil
    assert untrusted(inventory.get_host(first_pod).get_vars()["runpod_image"])


def _trust(value):
    """The value with each string marked by whether it may be templated (a hit must not change that either)."""
    if isinstance(value, dict):
        return {key: _trust(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_trust(item) for item in value]
    if isinstance(value, str):
        return ["untrusted" if untrusted(value) else "TRUSTED", str(value)]
    return value


def structure(inventory):
    """Everything an inventory holds: each host's variables (with their trust) and groups, each group's variables,
    hosts and children."""
    return {
        "hosts": {name: {"vars": _trust(host.vars), "groups": sorted(g.name for g in host.get_groups())}
                  for name, host in inventory.hosts.items()},
        "groups": {name: {"vars": _trust(group.get_vars()), "hosts": sorted(h.name for h in group.get_hosts()),
                          "children": sorted(g.name for g in group.child_groups)}
                   for name, group in inventory.groups.items()},
    }


# compose, groups and keyed_groups (parent_group too) whose expressions only read the pod's variables
CONSTRUCTED = {
    "compose": {"hourly_cost": "runpod_cost_per_hr * 2", "ssh_target": "ansible_host ~ ':' ~ ansible_port",
                "tags": "{'gpu': runpod_gpu_type_id | lower, 'index': runpod_pod_index}",
                "literal": "'{{ not templated }}'"},
    "groups": {"slurm_compute": True, "multi_gpu": "runpod_gpu_count > 1", "first": "runpod_pod_index == 0"},
    "keyed_groups": [{"key": "runpod_gpu_type_id", "prefix": "gpu", "parent_group": "by_gpu"},
                     {"key": "runpod_pod_index | string", "prefix": "index"},
                     {"key": "runpod_global_networking.enabled | string", "prefix": "global_networking"}],
    "strict": True,
}


def cached_config(site, tmp_path, **options):
    return site.config(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"),
                       cache_timeout=600, **options)


def cache_entry(tmp_path):
    """The plugin's data in the jsonfile cache (ansible-core 2.19+ wraps it in a JSON string, __payload__)."""
    (path,) = (tmp_path / "cache").iterdir()
    data = json.loads(path.read_text())
    return json.loads(data["__payload__"]) if "__payload__" in data else data


@pytest.fixture
def no_evaluation(monkeypatch):
    """Make any evaluation of a compose, groups or keyed_groups expression fail the test."""
    from ansible.plugins.inventory import Constructable

    def refuse(*_args, **_kwargs):
        raise AssertionError("an expression of the constructed options was evaluated again")

    def arm():
        for name in ("_compose", "_set_composite_vars", "_add_host_to_composed_groups", "_add_host_to_keyed_groups"):
            monkeypatch.setattr(Constructable, name, refuse)
    return arm


@pytest.fixture
def nothing_asked(monkeypatch):
    """Make any use of Terraform's runner or of the RunPod client fail the test (not even their import)."""
    module = inventory_loader.get(PLUGIN).__class__.__module__
    import sys

    def refuse():
        raise AssertionError("a cache hit asked for Terraform or the RunPod client")

    def arm():
        monkeypatch.setattr(sys.modules[module], "_runpod_api", refuse)
        monkeypatch.setattr(sys.modules[module], "_terraform", refuse)
    return arm


def test_a_cache_hit_builds_exactly_what_the_miss_built(site, all_running, pod_specs, tmp_path, no_evaluation,
                                                        nothing_asked):
    config = cached_config(site, tmp_path, **CONSTRUCTED)
    miss, _plugin = parse(config)
    calls, requests = len(site.terraform.calls()), len(site.api.requests)
    assert calls == 1 and requests == len(pod_specs)
    entry = cache_entry(tmp_path)
    assert entry["format"] == 5
    assert sorted(entry["constructed"]["hosts"]) == sorted(pod_specs), "what the options made is cached per pod"
    # the sanity of the comparison: the options made groups and variables
    assert hosts_of(miss, "slurm_compute") == sorted(pod_specs)
    assert "by_gpu" in miss.groups and miss.groups["by_gpu"].child_groups
    assert untrusted(miss.get_host(sorted(pod_specs)[0]).get_vars()["literal"])

    no_evaluation()
    nothing_asked()
    hit, _plugin = parse(config)
    assert len(site.terraform.calls()) == calls and len(site.api.requests) == requests
    assert structure(hit) == structure(miss)


def test_a_cache_hit_without_constructed_options(site, all_running, pod_specs, tmp_path, nothing_asked):
    config = cached_config(site, tmp_path)
    miss, _plugin = parse(config)
    assert "constructed" not in cache_entry(tmp_path)
    nothing_asked()
    hit, _plugin = parse(config)
    assert structure(hit) == structure(miss)
    assert len(site.terraform.calls()) == 1


def test_the_cache_holds_the_pods_variables_not_the_apis_answers(site, all_running, pod_specs, first_pod, tmp_path):
    reply = all_running[first_pod]
    reply["env"] = {"JUPYTER_PASSWORD": "not-for-the-cache"}
    site.api.set_pod(pod_specs[first_pod]["id"], reply)
    parse(cached_config(site, tmp_path))
    assert "not-for-the-cache" not in (tmp_path / "cache").joinpath(*os.listdir(tmp_path / "cache")).read_text()


def test_expressions_that_read_more_than_the_pod_are_evaluated_on_every_hit(
        site, all_running, pod_specs, tmp_path, monkeypatch, nothing_asked):
    monkeypatch.setenv("GPUOPS_TEST_RACK", "rack-1")
    config = cached_config(site, tmp_path, compose={"rack": "lookup('ansible.builtin.env', 'GPUOPS_TEST_RACK')"},
                           keyed_groups=[{"key": "runpod_gpu_type_id", "prefix": "gpu"}])
    miss, _plugin = parse(config)
    assert "constructed" not in cache_entry(tmp_path)
    name = sorted(pod_specs)[0]
    assert miss.get_host(name).get_vars()["rack"] == "rack-1"

    monkeypatch.setenv("GPUOPS_TEST_RACK", "rack-2")
    nothing_asked()
    hit, _plugin = parse(config)
    assert hit.get_host(name).get_vars()["rack"] == "rack-2"
    assert len(site.terraform.calls()) == 1


def test_a_compose_value_the_cache_cannot_carry_is_evaluated_on_every_hit(
        site, all_running, pod_specs, tmp_path, nothing_asked):
    # ansible_user comes from this file: trusted, unlike the pod's values; a JSON cache would lose that
    config = cached_config(site, tmp_path, compose={"login": "ansible_user"}, groups={"slurm_compute": True})
    miss, _plugin = parse(config)
    assert "constructed" not in cache_entry(tmp_path)
    nothing_asked()
    hit, _plugin = parse(config)
    assert structure(hit) == structure(miss)
    assert not untrusted(hit.get_host(sorted(pod_specs)[0]).get_vars()["login"])


@pytest.mark.parametrize("change", [
    {"compose": {"hourly_cost": "runpod_cost_per_hr * 3"}},
    {"keyed_groups": [{"key": "runpod_data_center_id", "prefix": "dc"}]},
    {"groups": {"slurm_compute": "runpod_pod_index == 0"}},
    {"ssh_user": "ubuntu"},
    {"private_key_file": "../../.gpuops/local/ssh/other_key"},
])
def test_a_changed_configuration_is_applied_on_a_hit(site, all_running, pod_specs, tmp_path, change, nothing_asked):
    options = {"compose": {"hourly_cost": "runpod_cost_per_hr * 2"}, "groups": {"slurm_compute": True},
               "keyed_groups": [{"key": "runpod_gpu_type_id", "prefix": "gpu"}]}
    parse(cached_config(site, tmp_path, **options))
    changed = dict(options, **change)
    from_scratch, _plugin = parse(site.config(name="uncached.runpod.yml", **changed), cache=False)
    calls = len(site.terraform.calls())

    config = cached_config(site, tmp_path, **changed)
    nothing_asked()
    hit, _plugin = parse(config)
    assert len(site.terraform.calls()) == calls, "the pod data itself stays cached"
    assert structure(hit) == structure(from_scratch)


def test_the_cache_expires_after_cache_timeout(site, all_running, pod_specs, tmp_path):
    config = site.config(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"),
                         cache_timeout=1, **CONSTRUCTED)
    first, _plugin = parse(config)
    time.sleep(1.5)
    site.api.pods.clear()  # the API would answer 404 now: a call that asks shows it
    assert "deleted outside Terraform" in inventory_error(config)
    assert len(site.terraform.calls()) == 2


def test_a_refresh_reads_a_new_state(site, all_running, pod_specs, other_pods, tmp_path, tf_output):
    config = cached_config(site, tmp_path, **CONSTRUCTED)
    parse(config)
    smaller = dict(tf_output)
    smaller["pods"] = dict(tf_output["pods"], value={n: s for n, s in pod_specs.items() if n != other_pods[0]})
    output = tmp_path / "smaller.json"
    output.write_text(json.dumps(smaller))
    config = cached_config(site, tmp_path, tf_output_file=output, **CONSTRUCTED)
    assert hosts_of(parse(config)[0], "gpu_pods") == sorted(pod_specs), "a hit: the state is not read"
    refreshed, _plugin = parse(config, cache=False)  # --flush-cache, meta: refresh_inventory
    assert hosts_of(refreshed, "gpu_pods") == sorted(set(pod_specs) - {other_pods[0]})
    hit, _plugin = parse(config)
    assert structure(hit) == structure(refreshed)


def test_a_cache_of_an_earlier_format_is_not_used(site, all_running, pod_specs, tmp_path):
    config = cached_config(site, tmp_path)
    parse(config)
    (path,) = (tmp_path / "cache").iterdir()
    data = json.loads(path.read_text())
    payload = json.loads(data["__payload__"]) if "__payload__" in data else data
    payload["format"] = 4
    path.write_text(json.dumps(dict(data, __payload__=json.dumps(payload)) if "__payload__" in data else payload))
    inventory, _plugin = parse(config)
    assert hosts_of(inventory, "gpu_pods") == sorted(pod_specs)
    assert len(site.terraform.calls()) == 2


# -- end to end, as ansible-inventory runs it ------------------------------------------------


def test_inventory_manager(site, all_running, pod_specs):
    manager = InventoryManager(loader=DataLoader(), sources=[str(site.config())])
    assert sorted(h.name for h in manager.get_hosts("gpu_pods")) == sorted(pod_specs)


def test_slurm_groups_come_from_the_configuration(site, all_running, pod_specs):
    """gpuops' inventories make every pod a Slurm node with constructed's groups (inventories/*/runpod.yml)."""
    manager = InventoryManager(loader=DataLoader(), sources=[str(site.config(groups={"slurm_compute": True}))])
    assert sorted(h.name for h in manager.get_hosts("slurm_compute")) == sorted(pod_specs)


@pytest.mark.parametrize("state", ["exited", "error", "terminated", "gone"])
def test_unavailable_pod_with_warn_is_left_out(site, all_running, pod_specs, other_pods, load_fixture, state,
                                               monkeypatch):
    name = other_pods[0]
    spec = pod_specs[name]
    if state == "gone":
        del site.api.pods[spec["id"]]
    else:
        site.api.set_pod(spec["id"], in_state(load_fixture, state, name, spec))
    warnings = []
    plugin = inventory_loader.get(PLUGIN)
    monkeypatch.setattr(type(plugin.display), "warning", lambda self, msg, *a, **k: warnings.append(msg))
    inventory, _plugin = parse(site.config(unavailable_pods="warn"), cache=False)
    assert name not in inventory.hosts
    assert set(inventory.hosts) == set(pod_specs) - {name}
    assert any(name in warning and "left out of the inventory" in warning for warning in warnings)


def test_extra_vars_never_switch_the_configuration(site, all_running, pod_specs, monkeypatch):
    """-i chooses the cloud: an extra var gpuops_cloud (the old way) leaves this configuration as it is."""
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict

    monkeypatch.setattr(context, "CLIARGS", ImmutableDict(extra_vars=("gpuops_cloud=other",)))
    site.config(name="other.runpod.yml", cloud="other")
    this = site.config(name="runpod.yml", cloud="local", tf_mode="empty")
    message = parse_error(this)
    assert "no Terraform state" in message and "provision" in message


def test_the_old_cloud_config_option_is_refused_clearly(site, all_running):
    message = parse_error(site.config(cloud="local", cloud_config="../{cloud}/runpod.yml"))
    assert "cloud_config" in message and "-i inventories/runpod" in message and "runpod.yml" in message
    assert not site.api.requests


def test_many_pods_are_listed_in_one_request_per_round(site, all_running, pod_specs):
    inventory, _plugin = parse(site.config(list_threshold=0), cache=False)
    assert set(inventory.hosts) == set(pod_specs)
    lists = [r for r in site.api.requests if r[0] == "GET" and r[1].split("?")[0] == "/v2/pods"]
    assert len(lists) == 1
    assert all(site.api.gets(spec["id"]) == 0 for spec in pod_specs.values())


def test_list_rounds_while_pods_start(site, pod_specs, first_pod, other_pods, load_fixture):
    """With list_threshold, each round is one GET /v2/pods, however many pods wait."""
    for index, (name, spec) in enumerate(sorted(pod_specs.items())):
        ready = running(load_fixture, name, spec, index)
        site.api.set_pod(spec["id"], *([ready] if name == first_pod else [in_state(load_fixture, "starting", name, spec)] * 2 + [ready]))
    inventory, _plugin = parse(site.config(list_threshold=0, poll_interval=0.05), cache=False)
    assert set(inventory.hosts) == set(pod_specs)
    assert [r[1] for r in site.api.requests] == ["/v2/pods"] * 3


def test_rate_limited_api_is_retried(site, all_running, pod_specs, load_api_fixture):
    answer = load_api_fixture("problems.json")["too_many_requests"]
    site.api.script("/v2/pods", (429, answer["body"], dict(answer["headers"], **{"Retry-After": "0"})))
    inventory, _plugin = parse(site.config(list_threshold=0), cache=False)
    assert set(inventory.hosts) == set(pod_specs)


def test_rate_limited_api_beyond_the_wait_allowed_is_a_clear_error(site, all_running, load_api_fixture):
    answer = load_api_fixture("problems.json")["too_many_requests"]
    site.api.script("/v2/pods", (429, answer["body"], answer["headers"]))
    message = inventory_error(site.config(list_threshold=0, max_retry_wait=1))
    assert "HTTP 429" in message and "rate limit exceeded" in message


def test_a_v1_base_url_is_a_clear_parser_error(site, all_running):
    message = parse_error(site.config(base_url="http://127.0.0.1:8765/v1"))
    assert "REST v1" in message and "https://api.runpod.io/v2" in message and "runpod.yml" in message


# -- the cloud cannot give the pods (a variable) vs. a wrong configuration (a parser error) ------------------------


def _warnings(monkeypatch):
    said = []
    plugin = inventory_loader.get(PLUGIN)
    monkeypatch.setattr(type(plugin.display), "warning", lambda self, msg, *a, **k: said.append(msg))
    return said


def test_api_down_sets_the_variable_and_builds_no_pod(site, pod_specs, closed_port_url, monkeypatch):
    """The local cloud (or RunPod) down while Terraform's state lists pods: no exception, no host, a clear message."""
    said = _warnings(monkeypatch)
    config = site.config(base_url=closed_port_url, cloud="local")
    message = inventory_error(config)

    # what failed, where, for which cloud and configuration, which pods, what to do
    assert "could not get them from the RunPod API at %s (cloud local, %s)" % (closed_port_url, config) in message
    assert "cannot reach the RunPod API at %s" % closed_port_url in message
    assert "python -m localcloud start" in message
    state = site.path / ".gpuops" / "local" / "terraform" / "terraform.tfstate"
    assert "Terraform's state %s lists %d pod(s)" % (state, len(pod_specs)) in message
    for name, spec in pod_specs.items():
        assert "%s (%s)" % (name, spec["id"]) in message
    assert "ansible-playbook teardown.yml" in message and "may be billing" in message
    assert len(said) == 1 and message in said[0]


@pytest.mark.parametrize("status", [401, 403])
def test_key_refused_sets_the_variable(site, all_running, load_api_fixture, status):
    problem = {"title": "Forbidden", "status": 403, "detail": "this key may not read pods"} if status == 403 else None
    if problem:
        for spec in site.api.pods:
            site.api.script("/v2/pods/" + spec, (403, problem))
        message = inventory_error(site.config())
    else:
        message = inventory_error(site.config(api_key="rpa_WRONG_KEY_MUST_NOT_LEAK", api_key_file=None))
        assert "rpa_WRONG_KEY_MUST_NOT_LEAK" not in message
    assert "HTTP %d" % status in message and "RUNPOD_API_KEY" in message
    assert site.api.base_url in message


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_after_the_retries_set_the_variable(site, all_running, pod_specs, status):
    problem = {"title": "Service Unavailable", "status": status, "detail": "try again later"}
    site.api.script("/v2/pods", *[(status, problem, {"Retry-After": "0"})] * 3)
    message = inventory_error(site.config(list_threshold=0, max_retries=2))
    assert "answered HTTP %d" % status in message and "try again later" in message
    requests = [r for r in site.api.requests if r[1] == "/v2/pods"]
    # 503 is retried for a GET, 500 is not
    assert len(requests) == (3 if status == 503 else 1)


def test_the_variable_reaches_localhost(site, closed_port_url):
    """Set on the group all: the implicit localhost, where gpuops' check play runs, has it."""
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(site.config(base_url=closed_port_url))])
    assert manager.get_hosts("gpu_pods") == []
    localhost = manager.localhost or manager.get_host("localhost")
    variables = VariableManager(loader=loader, inventory=manager).get_vars(host=localhost)
    assert "cannot reach the RunPod API at %s" % closed_port_url in variables[ERROR_VAR]


def test_no_error_no_variable(site, all_running):
    inventory, _plugin = parse(site.config())
    assert ERROR_VAR not in inventory.groups["all"].get_vars()


def test_an_error_is_never_cached(site, all_running, pod_specs, tmp_path):
    config = site.config(cache=True, cache_plugin="ansible.builtin.jsonfile",
                         cache_connection=str(tmp_path / "cache"), cache_timeout=600)
    site.api.api_key = "another-key"  # the API refuses ours
    assert "HTTP 401" in inventory_error(config)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    site.api.api_key = "test-key"
    inventory, _plugin = parse(config)
    assert set(inventory.hosts) == set(pod_specs)


def test_two_sources_keep_both_messages(site, closed_port_url):
    first = site.config(name="a.runpod.yml", base_url=closed_port_url)
    second = site.config(name="b.runpod.yml", api_key_file="../../.gpuops/localcloud/nope")
    manager = InventoryManager(loader=DataLoader(), sources=[str(first), str(second)])
    message = manager.groups["all"].get_vars()[ERROR_VAR]
    assert str(first) in message and str(second) in message


# Configuration errors stay parser errors (ansible.cfg's unparsed_is_failed makes every run fail on them).


def test_broken_yaml_is_a_parser_error(site, all_running):
    path = site.inventory_dir / "runpod.yml"
    path.write_text("plugin: %s\nproject_path: [unclosed\n" % PLUGIN)
    with pytest.raises(AnsibleError):
        parse(path)


@pytest.mark.parametrize("options, expected", [
    ({"project_path": None}, "project_path"),
    ({"wait_timeout": "soon"}, "wait_timeout"),
    ({"missing_state": "maybe"}, "missing_state"),
])
def test_bad_options_are_parser_errors(site, all_running, options, expected):
    with pytest.raises(AnsibleError) as err:
        parse(site.config(**options))
    assert expected in str(err.value)
    assert not site.api.requests


def test_missing_terraform_project_is_a_parser_error(site, all_running):
    message = parse_error(site.config(project_path="../../terraform/nope"))
    assert "Terraform project directory %s does not exist" % (site.path / "terraform" / "nope") in message


def test_a_bad_base_url_wins_over_a_missing_key(site, all_running):
    message = parse_error(site.config(base_url="ftp://127.0.0.1/v2", api_key_file=None))
    assert "not an http:// or https:// URL" in message


@pytest.mark.parametrize("answer, expected", [
    ((200, b"<html>hello</html>"), "not JSON"),
    ((418, b"I'm a teapot"), "HTTP 418"),
])
def test_an_answer_that_is_not_runpods_is_a_parser_error(site, all_running, answer, expected):
    """A base URL that points at something else than RunPod's v2 API is configuration."""
    site.api.script("/v2/pods", answer)
    message = parse_error(site.config(list_threshold=0))
    assert expected in message
