# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: runpod
short_description: RunPod GPU pods from Terraform outputs and the RunPod API
version_added: 0.1.0
author:
  - gpuops maintainers (@gpuops)
description:
  - Builds an inventory of the GPU pods that Terraform created on RunPod (or on the local stand-in of the RunPod API),
    through RunPod's REST API v2.
  - Reads the pod map from C(terraform output -json) (output O(output_name)) and selects exactly those pods by their
    ids (never by a name pattern across the account). Then asks C(GET {base_url}/pods/{id}) for each pod (or
    C(GET {base_url}/pods) once per round for many pods, see O(list_threshold)) until every pod is C(RUNNING) and has
    C(ssh.direct), waiting up to O(wait_timeout) seconds for pods that are still C(PROVISIONING) or C(STARTING).
    C(ssh.proxy) is never used (it carries no SFTP and no port forwarding).
  - Every pod is a host named after its key in the pod map, in the group C(gpu_pods), the pods of the deployment.
    That is the only group the plugin makes itself, and it exists even when it is empty. The plugin describes pods,
    not what runs on them; every other group comes from this file's O(groups) and O(keyed_groups) (Ansible's
    constructed options); gpuops' inventories, for example, put every pod in the group C(slurm_compute) with the
    condition C(true) in O(groups). A group that no pod matches is not created.
  - Host variables are C(ansible_host) and C(ansible_port) (from C(ssh.direct)), C(ansible_user),
    C(ansible_ssh_private_key_file) and facts prefixed with C(runpod_) - C(runpod_pod_id), C(runpod_pod_name),
    C(runpod_pod_index), C(runpod_status), C(runpod_cost_per_hr) (the pod's C(cost), USD per hour),
    C(runpod_gpu_type_id), C(runpod_gpu_count), C(runpod_cloud), C(runpod_data_center_id), C(runpod_image),
    C(runpod_global_networking) (a dictionary with C(enabled), C(ip) and C(internal_dns), the pod's
    C(<podId>.runpod.internal) name), C(runpod_started_at) (the pod's C(startedAt)) and C(runpod_host_key_alias).
    C(runpod_pod_index), C(runpod_gpu_type_id) and C(runpod_gpu_count) come from the Terraform output, the others from
    the API (C(runpod_cost_per_hr) falls back to the Terraform output).
  - C(runpod_pod_index) is the pod's C(index) in the Terraform output (gpuops' module - the number in the pod's name
    C(<prefix>-<index>)), set only when the output has one. It is stable per pod - it never moves when another pod
    is stopped, deleted or left out (O(unavailable_pods=warn)), and a pod that replaces it under the same name gets it
    - so that what is numbered per pod (gpuops' tunnel ports and addresses) stays put. Added in version 0.2.0.
  - C(runpod_host_key_alias) is C(runpod-<podId>-<startedAt as UTC epoch seconds>), the SSH C(HostKeyAlias) under which
    the pod's host key is pinned. A restart gives the pod a new C(startedAt), new host keys (RunPod's images make them
    at every start) and so a new alias.
  - The other non-sensitive Terraform outputs are the dictionary C(runpod_outputs) on the group C(gpu_pods).
    Sensitive outputs never become variables and are never cached.
  - Values that come from Terraform or from the API are marked unsafe, so they are never templated.
  - Relative paths in O(project_path), O(state_file), O(terraform_binary), O(api_key_file), O(private_key_file) and in the
    path variables C(TF_DATA_DIR), C(TF_CLI_CONFIG_FILE) and C(TF_PLUGIN_CACHE_DIR) of O(terraform_env) are resolved
    against the directory of the inventory file.
  - Failures are of two kinds, so that an C(ansible-playbook) run fails on both (C(unparsed_is_failed = true) in
    C(ansible.cfg)) while C(teardown.yml) still runs when the cloud cannot answer.
  - B(Configuration errors) fail the inventory source (a parser error), whose message says what to fix. They are the
    options of this file (a missing or wrong O(plugin), O(project_path), a base URL that is not a REST v2 URL),
    Terraform (not installed, C(terraform output) failing or timing out, a state whose pod map is malformed - a pod
    without an id, an C(index) that is not a whole number from 0, two pods with the same C(index)) and an API answer
    that is not RunPod's (not JSON, not a v2 list, a pod without an id, any other HTTP 4xx).
  - B(The cloud cannot give the deployment's pods now), while the Terraform state lists pods. That is no API key
    (neither O(api_key), nor E(RUNPOD_API_KEY), nor a readable, non-empty O(api_key_file)), the API unreachable
    (connection refused, DNS, TLS, timeout), the key refused (HTTP 401 or 403), HTTP 5xx or 429 still after the
    retries allowed (O(max_retries), O(max_retry_wait)), pods not C(RUNNING) with C(ssh.direct) within
    O(wait_timeout), and, with O(unavailable_pods=error), a pod stopped, in C(ERROR) or gone. The plugin then builds
    no pod host (the group C(gpu_pods) is empty, and no constructed group is made), prints the message once
    as a warning and sets it as the variable C(runpod_inventory_error) of the group C(all) (so C(localhost) has it), saying
    what failed, at which URL, for which cloud and configuration file, the pods the state lists, and what to do.
    Nothing is cached then. gpuops' playbooks that need the pods start with C(playbooks/check_inventory.yml), which
    fails with that message; C(teardown.yml) does not need the pods and runs.
  - Before any deployment (no Terraform state, or no pods in it) O(missing_state) decides.
  - With O(cache), the inventory cache keeps, for O(cache_timeout) seconds, each pod's host variables and
    C(runpod_outputs) (not the API's answers, nor the API key), and what O(compose), O(groups) and O(keyed_groups)
    made of them when O(use_extra_vars) is off, each of their expressions reads only the pod's variables and uses
    only pure filters and tests (no lookup, no C(now()), no C(group_names)), and each value O(compose) gives is one
    the cache carries unchanged (JSON, not a trusted template).
    A cached run then neither runs Terraform nor asks the API nor evaluates those expressions. Other expressions are
    evaluated on every run; so are all of them again when O(compose), O(groups), O(keyed_groups), O(strict),
    O(leading_separator), O(ssh_user), O(private_key_file) or ansible-core's version changed since the cache was
    filled. A change of the Terraform state alone does not refresh the cache - C(ansible-inventory --flush-cache)
    and the meta task C(refresh_inventory) ask Terraform and the API again.
  - Uses a YAML configuration file whose name ends with C(runpod.yml) or C(runpod.yaml). The plugin reads no extra
    vars - each cloud has an inventory of its own, chosen with C(-i) (C(ansible-playbook -i inventories/runpod
    site.yml)).
requirements:
  - Terraform (the C(terraform) CLI, or the C(make setup) launcher) and the state of a C(terraform apply).
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - gpuops.platform.runpod
options:
  plugin:
    description: Marks this file as a configuration of this plugin.
    type: str
    required: true
    choices:
      - gpuops.platform.runpod
  project_path:
    description:
      - Directory of the Terraform root module that created the pods; Terraform runs there.
    type: str
    required: true
  state_file:
    description:
      - Terraform state file, passed as C(-state=PATH).
      - When unset, Terraform finds the state through the root module's backend.
      - When a file C(backend.json) lies next to it, the deployment keeps its state in a Terraform backend
        (C(gpuops.platform.provision) writes that file when C(provision_terraform_backend) names another backend
        than C(local), and removes it otherwise). C(terraform output -json) then runs in the working copy that file
        names, with its C(TF_DATA_DIR), so it reads the backend, and this file is not read.
    type: str
  terraform_binary:
    description:
      - Terraform executable; a name without a slash is looked up in E(PATH).
    type: str
    default: terraform
    env:
      - name: GPUOPS_TERRAFORM
  terraform_env:
    description:
      - Extra environment variables for Terraform, such as C(TF_DATA_DIR) or C(TF_CLI_CONFIG_FILE).
    type: dict
    default: {}
  terraform_timeout:
    description:
      - Seconds to wait for C(terraform output) to finish.
    type: int
    default: 120
  output_name:
    description:
      - Name of the Terraform output that maps each pod name to C({id, index, gpu_type_id, gpu_count, cost_per_hr}).
      - C(index) is optional; without it the pods have no C(runpod_pod_index).
    type: str
    default: pods
  base_url:
    env:
      - name: RUNPOD_BASE_URL
  api_key:
    env:
      - name: RUNPOD_API_KEY
  api_key_file:
    type: str
  missing_state:
    description:
      - What to do when there is no deployment yet (no Terraform state, or no pods in its outputs).
      - V(error) fails the inventory source with a message saying to provision first.
      - V(warn) prints that message once as a warning and builds the groups empty, so that the
        provisioning playbook itself runs without inventory errors.
    type: str
    choices: [error, warn]
    default: error
  cloud:
    description:
      - The cloud this configuration serves, for example V(local) or V(runpod), named in the plugin's messages.
      - It never switches the configuration - the plugin reads no extra vars. Each cloud has an inventory of its own;
        choose it with C(-i).
    type: str
  unavailable_pods:
    description:
      - What to do with a pod of the Terraform state that the API reports stopped (C(EXITED), C(TERMINATED)), broken
        (C(ERROR)) or no longer knows (404, deleted outside Terraform).
      - V(error) builds no pod host and sets C(runpod_inventory_error), naming the pod (see the description).
      - V(warn) prints that as a warning and leaves the pod out of the inventory, so that the provisioning playbook
        (C(site.yml), C(playbooks/provision.yml)) runs and replaces it; the rebuilt inventory then has it again.
    type: str
    choices: [error, warn]
    default: error
  list_threshold:
    description:
      - With more pods to look up than this, the plugin asks for every pod in one C(GET /pods) per round and
        C(GET /pods/{id}) only for a pod the list lacks, instead of one C(GET /pods/{id}) per pod (fewer requests
        against RunPod's rate limit).
      - V(0) always lists.
    type: int
    default: 8
  wait_timeout:
    description:
      - Seconds to wait, for all pods together, until the API reports every pod C(RUNNING) with C(ssh.direct)
        (pods are C(PROVISIONING), then C(STARTING), first).
      - V(0) asks once and does not wait.
      - Past it, the plugin builds no pod host and sets C(runpod_inventory_error), naming the pods and their status.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two rounds of API requests while pods are still starting.
    type: float
    default: 5
  ssh_user:
    description:
      - Value of C(ansible_user) for every pod.
    type: str
    default: root
  private_key_file:
    description:
      - SSH private key for the pods; becomes C(ansible_ssh_private_key_file) when set.
    type: str
"""

EXAMPLES = r"""
---
# inventories/local/runpod.yml: pods on the local stand-in of the RunPod API
plugin: gpuops.platform.runpod
project_path: ../../terraform/runpod
state_file: ../../.gpuops/local/terraform/terraform.tfstate
terraform_binary: ../../.venv/bin/terraform
terraform_env:
  TF_DATA_DIR: ../../.gpuops/local/terraform/data
  TF_CLI_CONFIG_FILE: ../../.gpuops/localcloud/terraform.rc
base_url: http://127.0.0.1:8765/v2
api_key_file: ../../.gpuops/localcloud/api_key
private_key_file: ../../.gpuops/local/ssh/id_ed25519
wait_timeout: 120
poll_interval: 1
# every pod is a Slurm node: the group comes from here, not from the plugin
groups:
  slurm_compute: true

---
# inventories/runpod/runpod.yml: real RunPod, key from RUNPOD_API_KEY,
# groups per GPU type and per data centre
plugin: gpuops.platform.runpod
project_path: ../../terraform/runpod
state_file: ../../.gpuops/runpod/terraform/terraform.tfstate
private_key_file: ../../.gpuops/runpod/ssh/id_ed25519
wait_timeout: 600
poll_interval: 10
keyed_groups:
  - key: runpod_gpu_type_id
    prefix: gpu
  - key: runpod_data_center_id
    prefix: dc
groups:
  global_networking: runpod_global_networking.enabled
compose:
  hourly_cost: runpod_cost_per_hr * 1.0

---
# cache the pods for ten minutes: a run within them asks neither Terraform nor the API
plugin: gpuops.platform.runpod
project_path: ../../terraform/runpod
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ../../.gpuops/inventory-cache
cache_timeout: 600
"""

import hashlib
import json
import os
import time

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.release import __version__ as ansible_version
from ansible.template import is_trusted_as_template
from ansible.utils.unsafe_proxy import wrap_var

# The RunPod client (module_utils/_runpod_api.py, which pulls in ansible.module_utils.urls and its TLS stack) and the
# Terraform runner are imported only when Terraform and the API are asked: a cache hit needs neither.

# version of the data this plugin writes to the inventory cache
# (4: the pods' index, no role; 5: each pod's host variables instead of the API's answer, and what the constructed
# options made of them)
_CACHE_FORMAT = 5
_TF_PATH_VARS = ("TF_DATA_DIR", "TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")
_STOPPED = ("EXITED", "TERMINATED")
# The one group the plugin makes: the deployment's pods. Any other group comes from the configuration
# (constructed's groups and keyed_groups): the plugin describes pods, not what runs on them.
GROUP_ALL = "gpu_pods"


# The group variable that carries why the pods of an existing deployment are not in the inventory.
ERROR_VAR = "runpod_inventory_error"


def _runpod_api():
    """module_utils/_runpod_api.py, imported on first use."""
    from ansible_collections.gpuops.platform.plugins.module_utils import _runpod_api as api

    return api


def _terraform():
    """plugin_utils/_terraform.py, imported on first use."""
    from ansible_collections.gpuops.platform.plugins.plugin_utils import _terraform as terraform

    return terraform


class NoDeployment(AnsibleParserError):
    """There is no deployment yet: no Terraform state, or no pods in it."""


class CloudUnavailable(Exception):
    """The Terraform state lists pods, but the cloud cannot give them now (no key, API down or refusing, a timeout).

    Not a parser error: the plugin builds no pod host and sets ERROR_VAR on the group all instead.
    """


class PodUnavailable(CloudUnavailable):
    """A pod of the Terraform state is stopped, or gone from the API."""


def _api_failure(err):
    """The exception for an API error: the cloud's state (CloudUnavailable) or a configuration error."""
    api = _runpod_api()
    # API failures that say the cloud cannot answer now (or refuses the key), not that this configuration is wrong.
    if isinstance(err, (api.RunPodUnreachable, api.RunPodAuthError, api.RunPodServerError, api.RunPodRateLimited)):
        return CloudUnavailable(to_native(err))
    return AnsibleParserError(to_native(err))


def make_unsafe(value):
    """Mark data from Terraform or the API (recursively) as never to be templated."""
    return wrap_var(value)


# -- the constructed options on a cache hit -------------------------------------------------------------------------
#
# Evaluating compose, groups and keyed_groups is a Jinja compilation per pod and expression (most of the time of a
# cache hit with 1,000 pods). When each expression is a pure function of the pod's variables, what it made for a pod
# is cached with the pods (the "constructed" entry) and a cache hit applies that instead of evaluating again. An
# expression that may give another result with the same variables (a lookup, now(), a function call, group_names, a
# filter or test not known to be pure) is evaluated on every run, as before.

# Filters and tests (jinja2's and ansible.builtin's) whose result depends on their arguments only.
_PURE_FILTERS = frozenset((
    "abs", "attr", "b64decode", "b64encode", "basename", "batch", "bool", "capitalize", "center", "combine", "count",
    "d", "default", "dict2items", "dictsort", "dirname", "e", "escape", "first", "flatten", "float", "format",
    "groupby", "hash", "items", "items2dict", "join", "last", "length", "list", "lower", "map", "max", "md5", "min",
    "quote", "regex_escape", "regex_findall", "regex_replace", "regex_search", "reject", "rejectattr", "replace",
    "reverse", "round", "select", "selectattr", "sha1", "slice", "sort", "split", "splitext", "string", "sum",
    "title", "to_json", "to_nice_json", "ternary", "trim", "truncate", "type_debug", "unique", "upper", "wordcount",
    "zip",
))
_PURE_TESTS = frozenset((
    "==", "!=", "<", "<=", ">", ">=", "boolean", "contains", "defined", "divisibleby", "eq", "equalto", "even",
    "false", "falsy", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
    "mapping", "match", "ne", "none", "number", "odd", "regex", "sameas", "search", "sequence", "string", "true",
    "truthy", "undefined", "upper",
))
# Filters whose first argument names a filter or test (map('lower'), select('match', 'x')).
_NAMING_FILTERS = {"map": _PURE_FILTERS, "select": _PURE_TESTS, "reject": _PURE_TESTS}
# Variables that do not come from the pod: the inventory around it, or nothing.
_IMPURE_NAMES = frozenset(("group_names", "groups", "hostvars", "lookup", "now", "omit", "q", "query", "undef", "vars"))
_PURE_NODES = (
    "Add", "And", "Compare", "Concat", "CondExpr", "Const", "Dict", "Div", "Filter", "FloorDiv", "Getattr", "Getitem",
    "Keyword", "List", "Mod", "Mul", "Name", "Neg", "Not", "Operand", "Or", "Output", "Pair", "Pos", "Pow", "Slice",
    "Sub", "Template", "TemplateData", "Test", "Tuple",
)


def _pure_node(node):
    """Whether a Jinja syntax tree only reads variables and applies pure filters and tests."""
    kind = type(node).__name__
    if kind not in _PURE_NODES:
        return False
    if kind == "Name" and (node.ctx != "load" or node.name in _IMPURE_NAMES):
        return False
    if kind in ("Filter", "Test"):
        name = node.name[len("ansible.builtin."):] if node.name.startswith("ansible.builtin.") else node.name
        if name not in (_PURE_FILTERS if kind == "Filter" else _PURE_TESTS) or node.dyn_args or node.dyn_kwargs:
            return False
        if kind == "Filter" and name in _NAMING_FILTERS and node.args:
            named = node.args[0]
            if type(named).__name__ != "Const" or named.value not in _NAMING_FILTERS[name]:
                return False
        if kind == "Filter" and name in ("selectattr", "rejectattr") and len(node.args) > 1:
            named = node.args[1]
            if type(named).__name__ != "Const" or named.value not in _PURE_TESTS:
                return False
    return all(_pure_node(child) for child in node.iter_child_nodes())


def _pure_expression(expression, template=False):
    """Whether an expression (or, with template, a template) of the configuration is a pure function of the pod."""
    if isinstance(expression, bool) or expression is None:
        return True
    if not isinstance(expression, str):
        return False
    # imported only when the constructed options are checked
    import jinja2  # pylint: disable=import-outside-toplevel

    source = expression if template else "{{ (%s) }}" % expression
    try:
        tree = jinja2.Environment().parse(source)
    except Exception:  # pylint: disable=broad-exception-caught
        return False  # what Jinja cannot parse alone is evaluated on every run, as Ansible parses it
    return _pure_node(tree)


def _plain(value):
    """Whether a value that compose gave survives the JSON cache unchanged: JSON types, no trusted template."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return not is_trusted_as_template(value)
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


class _Recorder:
    """Stands for the inventory while the constructed options run for one host, and notes what they do to it."""

    def __init__(self, inventory, host):
        self._inventory = inventory
        self._host = host
        self.ops = []
        self.replayable = True

    def __getattr__(self, name):
        return getattr(self._inventory, name)

    def add_group(self, group):
        self.replayable = self.replayable and isinstance(group, str)
        self.ops.append(["group", group])
        return self._inventory.add_group(group)

    def add_child(self, group, child):
        # the host into a group, or (keyed_groups' parent_group) a group into another
        self.replayable = self.replayable and isinstance(group, str) and isinstance(child, str)
        self.ops.append(["child", group, child])
        return self._inventory.add_child(group, child)

    def add_host(self, host, group=None, port=None):
        self.replayable = self.replayable and host == self._host and isinstance(group, str) and port is None
        self.ops.append(["host", group])
        return self._inventory.add_host(host, group=group, port=port)

    def set_variable(self, entity, varname, value):
        self.replayable = self.replayable and entity == self._host and _plain(value)
        self.ops.append(["var", varname, value])
        return self._inventory.set_variable(entity, varname, value)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "gpuops.platform.runpod"

    def __init__(self):
        super().__init__()
        self._config_dir = None
        self._config_path = None

    # -- configuration ---------------------------------------------------

    def verify_file(self, path):
        if not super().verify_file(path):
            self.display.vvv("%s: declining %s: it does not exist or is not readable" % (self.NAME, path))
            return False
        if not path.endswith(("runpod.yml", "runpod.yaml")):
            self.display.vvv(
                "%s: declining %s: the file name must end with runpod.yml or runpod.yaml" % (self.NAME, path))
            return False
        return True

    def _resolve(self, value):
        """Expand ~ and $VARS; make a relative path relative to the inventory file's directory."""
        if not value:
            return None
        value = os.path.expanduser(os.path.expandvars(str(value)))
        if not os.path.isabs(value):
            value = os.path.join(self._config_dir, value)
        return os.path.normpath(value)

    def _resolve_binary(self, value):
        value = str(value or "terraform")
        if "/" not in value and not value.startswith("~"):
            return value  # looked up in PATH
        return self._resolve(value)

    def _terraform_env(self):
        env = {}
        for name, value in (self.get_option("terraform_env") or {}).items():
            if value is None:
                continue
            value = str(value)
            if name in _TF_PATH_VARS and value:
                value = self._resolve(value)
            env[str(name)] = value
        return env

    def _api_key(self):
        key = self.get_option("api_key")
        if key:
            return str(key).strip()
        key_file = self._resolve(self.get_option("api_key_file"))
        if not key_file:
            raise CloudUnavailable(
                "no RunPod API key: set RUNPOD_API_KEY, or the api_key or api_key_file option in %s" % self._config_path)
        try:
            with open(key_file, encoding="utf-8") as handle:
                key = handle.read().strip()
        except OSError as err:
            raise CloudUnavailable(
                "cannot read the RunPod API key file %s (%s); the local cloud writes it when it first starts "
                "(`python -m localcloud start`), for RunPod set RUNPOD_API_KEY instead" % (key_file, err.strerror)) from None
        if not key:
            raise CloudUnavailable(
                "the RunPod API key file %s is empty: for the local cloud remove it and run `python -m localcloud "
                "start`, for RunPod set RUNPOD_API_KEY instead" % key_file)
        return key

    # -- fetching ----------------------------------------------------------

    def _terraform_outputs(self):
        project_path = self._resolve(self.get_option("project_path"))
        state_file = self._resolve(self.get_option("state_file"))
        env = self._terraform_env()
        terraform_utils = _terraform()
        try:
            backend = terraform_utils.backend_working_copy(state_file)
        except terraform_utils.TerraformError as err:
            raise AnsibleParserError(to_native(err)) from None
        if backend:
            # The provision role keeps the state in a backend: its working copy reads it from there.
            project_path, env["TF_DATA_DIR"], state_file = backend[1], backend[2], None
        terraform = terraform_utils.TerraformCommands(
            project_path=project_path,
            binary=self._resolve_binary(self.get_option("terraform_binary")),
            env=env,
            timeout=self.get_option("terraform_timeout"),
        )
        try:
            outputs = terraform.output(state_file=state_file)
        except terraform_utils.TerraformNoState as err:
            raise NoDeployment(to_native(err)) from None
        except terraform_utils.TerraformError as err:
            raise AnsibleParserError(to_native(err)) from None
        return outputs, state_file or project_path

    def _pod_specs(self, outputs, where):
        """The pod map of the Terraform output, checked."""
        name = self.get_option("output_name")
        if name not in outputs:
            raise NoDeployment(
                "no Terraform state at %s with an output %r (it has: %s): %s"
                % (where, name, ", ".join(sorted(outputs)) or "none", _terraform().PROVISION_HINT))
        specs = outputs[name].value
        if not isinstance(specs, dict):
            raise AnsibleParserError(
                "Terraform output %r at %s is not a map of pod name to {id, index, gpu_type_id, gpu_count, cost_per_hr}"
                % (name, where))
        for pod_name, spec in specs.items():
            if not isinstance(spec, dict) or not spec.get("id"):
                raise AnsibleParserError("Terraform output %r at %s: pod %r has no id" % (name, where, pod_name))
        self._check_specs(specs, "Terraform output %r at %s" % (name, where))
        return specs

    @staticmethod
    def _check_specs(specs, where):
        """No pods is no deployment; each pod's index, where there is one, a whole number from 0, its own."""
        if not specs:
            raise NoDeployment("%s lists no pods: %s" % (where, _terraform().PROVISION_HINT))
        owners = {}
        for name in sorted(specs):
            index = specs[name].get("index")
            if index is None:
                continue
            if isinstance(index, float) and index.is_integer():
                index = int(index)
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise AnsibleParserError(
                    "%s: pod %s has index %r, not a whole number from 0 (the number in the pod's name); "
                    "re-run ansible-playbook playbooks/provision.yml to rewrite the output" % (where, name, index))
            if index in owners:
                raise AnsibleParserError(
                    "%s: pods %s and %s have the same index %d; each pod needs an index of its own (its tunnel "
                    "ports and address are numbered by it)" % (where, owners[index], name, index))
            owners[index] = name

    def _get_pod(self, client, name, spec, listed=None):
        api = _runpod_api()
        try:
            pod = listed[spec["id"]] if listed and spec["id"] in listed else client.get_pod(spec["id"])
        except api.RunPodNotFound:
            raise PodUnavailable(
                "pod %s (%s) is in the Terraform state but RunPod answered 404 at %s: it was deleted outside "
                "Terraform; re-run ansible-playbook playbooks/provision.yml to recreate it"
                % (name, spec["id"], client.url("pods/%s" % spec["id"]))) from None
        except api.RunPodAPIError as err:
            raise _api_failure(err) from None
        status = pod.status or ""
        if status in _STOPPED:
            raise PodUnavailable(
                "pod %s (%s) is %s: start it or re-run ansible-playbook playbooks/provision.yml" % (name, pod.id, status))
        if status == "ERROR":
            raise PodUnavailable(
                "pod %s (%s) is in ERROR (its container cannot run): read its logs (RunPod console, or GET %s/logs), "
                "then start it, or re-run ansible-playbook playbooks/provision.yml to replace it"
                % (name, pod.id, client.url("pods/%s" % pod.id)))
        return pod

    def _list_pods(self, client):
        try:
            return {pod.id: pod for pod in client.list_pods()}
        except _runpod_api().RunPodAPIError as err:
            raise _api_failure(err) from None

    def _wait_for_pods(self, client, specs):
        """Poll all pods together until each is RUNNING with ssh.direct, within wait_timeout."""
        wait_timeout = self.get_option("wait_timeout")
        poll_interval = max(float(self.get_option("poll_interval")), 0.0)
        deadline = time.monotonic() + max(wait_timeout, 0)
        pending = dict(specs)
        last_status = {}
        ready = {}
        while True:
            listed = self._list_pods(client) if len(pending) > self.get_option("list_threshold") else None
            for name in sorted(pending):
                try:
                    pod = self._get_pod(client, name, pending[name], listed)
                except PodUnavailable as err:
                    if self.get_option("unavailable_pods") != "warn":
                        raise
                    self.display.warning("%s: %s; it is left out of the inventory" % (self.NAME, to_native(err)))
                    self._unavailable[name] = pending.pop(name)
                    continue
                if pod.ssh_ready:
                    ready[name] = pod
                    del pending[name]
                else:
                    last_status[name] = pod.status or "no status"
            if not pending:
                return ready
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waiting = ", ".join(
                    "%s (%s, %s%s)" % (name, pending[name]["id"], last_status.get(name),
                                       ", no ssh.direct yet" if last_status.get(name) == "RUNNING" else "")
                    for name in sorted(pending))
                raise CloudUnavailable(
                    "timed out after %ss waiting for RunPod to report these pods RUNNING with ssh.direct: %s; "
                    "raise the wait_timeout option in %s, or check that the pods expose 22/tcp and that their image "
                    "starts sshd (RunPod console, or GET %s/pods/<id>)"
                    % (wait_timeout, waiting, self._config_path, client.base_url))
            self.display.vv("%s: waiting for %d pod(s) to run with ssh.direct: %s" % (
                self.NAME, len(pending), ", ".join("%s (%s)" % (n, last_status.get(n)) for n in sorted(pending))))
            time.sleep(min(poll_interval, remaining))

    def _unavailable_message(self, reason, specs, where):
        """The message of ERROR_VAR: what failed, where, for which cloud, and what to do."""
        pods = ", ".join("%s (%s)" % (name, specs[name]["id"]) for name in sorted(specs))
        return (
            "The inventory has none of the deployment's pods: %s could not get them from the RunPod API at %s "
            "(cloud %s, %s). Terraform's state %s lists %d pod(s): %s. Why: %s. "
            "No playbook can configure or use these pods until that is fixed, and they may be billing. Fix it and "
            "run again (ansible-inventory --list shows the inventory). To remove the pods instead, run "
            "ansible-playbook teardown.yml with the same inventory: it works from the Terraform state."
            % (self.NAME, (self.get_option("base_url") or _runpod_api().DEFAULT_BASE_URL).rstrip("/"),
               self.get_option("cloud") or "not named", self._config_path, where, len(specs), pods,
               to_native(reason).rstrip(".")))

    def _fetch(self):
        """Ask Terraform and the API; return JSON-serialisable data, without sensitive outputs."""
        outputs, where = self._terraform_outputs()
        specs = self._pod_specs(outputs, where)
        try:
            return self._fetch_pods(outputs, specs)
        except CloudUnavailable as err:
            raise CloudUnavailable(self._unavailable_message(err, specs, where)) from None

    def _fetch_pods(self, outputs, specs):
        try:
            api_key, key_error = self._api_key(), None
        except CloudUnavailable as err:
            api_key, key_error = None, err
        api = _runpod_api()
        try:
            # Built even without a key, so that a wrong base URL (configuration) is reported before a missing key.
            client = api.RunPodClient(
                api_key=api_key or "no-key",
                base_url=self.get_option("base_url"),
                timeout=self.get_option("request_timeout"),
                validate_certs=self.get_option("validate_certs"),
                max_retries=self.get_option("max_retries"),
                max_retry_wait=self.get_option("max_retry_wait"),
            )
        except api.RunPodAPIError as err:
            raise AnsibleParserError("%s (in %s)" % (to_native(err), self._config_path)) from None
        if key_error is not None:
            raise key_error
        self._unavailable = {}
        pods = self._wait_for_pods(client, specs)
        output_name = self.get_option("output_name")
        return {
            "format": _CACHE_FORMAT,
            # What the inventory needs of each pod, not the API's answer (that holds the pod's env, for one).
            "pods": {name: list(map(list, self._host_vars(name, specs[name], pods[name]).items()))
                     for name in specs if name in pods},
            "unavailable": dict(self._unavailable),
            "outputs": {
                name: output.value for name, output in outputs.items() if not output.sensitive and name != output_name
            },
        }

    # -- building ----------------------------------------------------------

    def _host_vars(self, name, spec, pod):
        def first(*values):
            return next((value for value in values if value is not None), None)

        hostvars = {
            "ansible_host": pod.ssh_host,
            "ansible_port": pod.ssh_port,
            "runpod_pod_id": pod.id,
            "runpod_pod_name": pod.name or name,
            "runpod_status": pod.status,
            "runpod_cost_per_hr": first(pod.cost, spec.get("cost_per_hr")),
            "runpod_gpu_type_id": first(spec.get("gpu_type_id"), pod.gpu_type_id),
            "runpod_gpu_count": first(spec.get("gpu_count"), pod.gpu_count),
            "runpod_cloud": pod.cloud,
            "runpod_data_center_id": pod.data_center_id,
            "runpod_image": pod.image,
            "runpod_global_networking": pod.global_networking.as_dict(),
            "runpod_started_at": pod.started_at,
            "runpod_host_key_alias": _runpod_api().host_key_alias(pod),
        }
        if spec.get("index") is not None:
            # Checked by _check_specs: a whole number from 0 (JSON may carry it as 1.0).
            hostvars["runpod_pod_index"] = int(spec["index"])
        return hostvars

    def _constructed_key(self):
        """What the constructed options make of a pod's variables, or None when they may change with anything else.

        The key names everything that decides it besides the pod's variables: the options themselves, the variables
        that come from this file (ansible_user, ansible_ssh_private_key_file), ansible-core's version.
        """
        compose = self.get_option("compose") or {}
        groups = self.get_option("groups") or {}
        keyed_groups = self.get_option("keyed_groups") or []
        if self.get_option("use_extra_vars"):
            return None
        if not isinstance(compose, dict) or not isinstance(groups, dict) or not isinstance(keyed_groups, list):
            return None
        expressions = [(value, False) for value in compose.values()] + [(value, False) for value in groups.values()]
        for keyed in keyed_groups:
            if not isinstance(keyed, dict):
                return None
            expressions += [(keyed.get("key"), False), (keyed.get("parent_group"), True)]
        if not all(_pure_expression(expression, template) for expression, template in expressions):
            return None
        settings = [
            _CACHE_FORMAT, ansible_version, compose, groups, keyed_groups, self.get_option("strict"),
            self.get_option("leading_separator"), self.get_option("ssh_user"),
            self._resolve(self.get_option("private_key_file")),
        ]
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode("utf-8")).hexdigest()

    def _construct(self, host, strict, record):
        """Apply compose, groups and keyed_groups to a host; with record, return what they did (None: not replayable)."""
        recorder = None
        if record:
            recorder = _Recorder(self.inventory, host)
            self.inventory, inventory = recorder, self.inventory
        try:
            hostvars = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)
        finally:
            if recorder is not None:
                self.inventory = inventory
        return recorder.ops if recorder is not None and recorder.replayable else None

    def _replay(self, host, ops):
        """Do to a host what _construct recorded, without evaluating any expression."""
        inventory = self.inventory
        for op in ops:
            if op[0] == "var":
                inventory.set_variable(host, op[1], make_unsafe(op[2]))
            elif op[0] == "group":
                inventory.add_group(op[1])
            elif op[0] == "child":
                inventory.add_child(op[1], op[2])
            else:
                inventory.add_host(host, op[1])

    def _populate(self, data, record=False):
        """Build the inventory from the pod data; with record, return what the constructed options did, to cache."""
        pods = data["pods"]
        self._check_specs(
            dict({name: {"index": dict(pairs).get("runpod_pod_index")} for name, pairs in pods.items()},
                 **(data.get("unavailable") or {})),
            "the pod data")
        strict = self.get_option("strict")
        ssh_user = self.get_option("ssh_user")
        private_key_file = self._resolve(self.get_option("private_key_file"))
        constructs = bool(self.get_option("compose") or self.get_option("groups") or self.get_option("keyed_groups"))
        key = self._constructed_key() if constructs and (record or data.get("constructed")) else None
        cached = data.get("constructed") or {}
        replay = cached.get("hosts") if key is not None and cached.get("key") == key else None
        recorded = {} if key is not None and record else None

        inventory = self.inventory
        inventory.add_group(GROUP_ALL)
        inventory.set_variable(GROUP_ALL, "runpod_outputs", make_unsafe(data.get("outputs") or {}))

        for name in sorted(pods):
            host = inventory.add_host(make_unsafe(name), group=GROUP_ALL)
            for var, value in pods[name]:
                inventory.set_variable(host, var, make_unsafe(value))
            inventory.set_variable(host, "ansible_user", ssh_user)
            if private_key_file:
                inventory.set_variable(host, "ansible_ssh_private_key_file", private_key_file)
            if not constructs:
                continue
            if replay is not None and name in replay:
                self._replay(host, replay[name])
                continue
            ops = self._construct(host, strict, record=recorded is not None)
            if recorded is not None:
                if ops is None:
                    recorded = None  # compose gave a value the cache cannot carry unchanged: evaluate every time
                else:
                    recorded[name] = ops
        return {"key": key, "hosts": recorded} if recorded is not None else None

    @staticmethod
    def _cache_usable(data):
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or not isinstance(data.get("pods"), dict):
            return False
        return all(
            isinstance(pairs, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in pairs)
            for pairs in data["pods"].values())

    def _set_inventory_error(self, message):
        """No pod host; the groups empty; ERROR_VAR on the group all says why (added to one already there)."""
        self.display.warning("%s: %s" % (self.NAME, message))
        self.inventory.add_group(GROUP_ALL)
        earlier = self.inventory.groups["all"].get_vars().get(ERROR_VAR)
        if earlier:
            message = "%s\n%s" % (earlier, message)
        self.inventory.set_variable("all", ERROR_VAR, make_unsafe(message))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        config = self._read_config_data(path)
        if "cloud_config" in config:
            # Earlier versions read another cloud's configuration when the extra var gpuops_cloud named it.
            raise AnsibleParserError(
                "%s sets cloud_config, which this plugin no longer has: it never reads another cloud's configuration "
                "(nor the extra var gpuops_cloud). Remove cloud_config, and choose the cloud with its own inventory, "
                "e.g. ansible-playbook -i inventories/runpod site.yml" % path)
        self._config_path = path
        self._config_dir = os.path.dirname(os.path.abspath(path))

        cache_key = self.get_cache_key(path)
        user_cache_setting = self.get_option("cache")
        attempt_to_read_cache = user_cache_setting and cache
        cache_needs_update = user_cache_setting and not cache

        data = None
        if attempt_to_read_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
            if data is not None and not self._cache_usable(data):
                data = None
                cache_needs_update = True

        if data is None:
            try:
                data = self._fetch()
            except NoDeployment as err:
                if self.get_option("missing_state") != "warn":
                    raise
                self.display.warning("%s: %s" % (self.NAME, to_native(err)))
                self.inventory.add_group(GROUP_ALL)
                return
            except CloudUnavailable as err:
                # Not cached: the next run asks again.
                self._set_inventory_error(to_native(err))
                return

        if not cache_needs_update:
            self._populate(data)
            return
        constructed = self._populate(data, record=True)
        if constructed is not None:
            data = dict(data, constructed=constructed)
        self._cache[cache_key] = data
