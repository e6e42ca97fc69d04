#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: runpod_orphans
short_description: Find, and optionally terminate, the pods of a gpuops deployment that its Terraform state does not know
version_added: 0.1.0
description:
  - Lists the pods of a RunPod account (or of the local RunPod-compatible cloud) through C(GET /v2/pods) and returns
    the orphans of one gpuops deployment, the pods that carry its deployment id but that its Terraform state does
    not hold. For example, a pod created behind Terraform's back, or one the provider created in a run that crashed
    before the state was written.
  - gpuops tags every pod it creates with its deployment's id in the environment variable C(GPUOPS_DEPLOYMENT)
    (RunPod's v2 pods have no labels, but C(env) is part of a CreatePodRequest and of every pod the API returns).
    The id is random and kept in the deployment's state directory.
  - A pod of another deployment (another id) or without the tag (not made by gpuops) is never an orphan, whatever
    its name. Those named like this deployment's pods are returned as RV(others) and never touched.
  - With O(purge=true) the orphans are terminated (C(DELETE /v2/pods/{id})); without it nothing changes.
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - gpuops.platform.runpod
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: With O(purge=true) check mode reports the orphans it would terminate, and terminates none.
  diff_mode:
    support: none
  idempotent:
    description: Whether the module is idempotent.
    support: full
    details: A second purge finds no orphan left and changes nothing.
  platform:
    platforms: posix
options:
  deployment_id:
    description:
      - The deployment's id, the value of C(GPUOPS_DEPLOYMENT) on its pods (8 to 64 lowercase letters and digits).
      - The provision role keeps it in C(<state dir>/<cloud>/deployment-id).
    type: str
    required: true
  known_ids:
    description:
      - The ids of the pods that the deployment's Terraform state holds. They are never orphans.
      - An empty list makes every pod of the deployment an orphan (after a teardown, for example).
    type: list
    elements: str
    required: true
  name_prefix:
    description:
      - The deployment's name prefix. When set, an orphan must also be named C(<name_prefix>-<index>), as
        terraform/runpod names pods, and RV(others) lists the pods so named that are not this deployment's.
    type: str
  purge:
    description:
      - Terminate the orphans.
      - Pods of another deployment and pods without the tag are never terminated.
    type: bool
    default: false
notes:
  - Stopped pods (C(EXITED)) are orphans too, because they still hold their disk and may be billed for it.
    C(TERMINATED) pods are left out.
seealso:
  - module: gpuops.platform.runpod_pod_info
  - plugin: gpuops.platform.runpod
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: List the orphans of the deployment
  gpuops.platform.runpod_orphans:
    deployment_id: "{{ lookup('ansible.builtin.file', '.gpuops/local/deployment-id') }}"
    known_ids: "{{ terraform_pods.values() | map(attribute='id') | list }}"
    name_prefix: gpuops
  register: orphans

- name: Terminate them
  gpuops.platform.runpod_orphans:
    deployment_id: "{{ lookup('ansible.builtin.file', '.gpuops/local/deployment-id') }}"
    known_ids: []
    name_prefix: gpuops
    purge: true
"""

RETURN = r"""
orphans:
  description:
    - The deployment's pods that O(known_ids) does not hold, sorted by name, then id, each as
      M(gpuops.platform.runpod_pod_info) returns a pod, plus C(deployment).
    - With O(purge=true), the pods terminated (or, in check mode, that would be).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 7h9k2m4n6p
      name: gpuops-1
      status: RUNNING
      cost_per_hr: 0.69
      deployment: k3v9q2x7m1c8b4zd
terminated:
  description: The ids of the orphans terminated by this run (none in check mode, and none without O(purge)).
  returned: always
  type: list
  elements: str
  sample: [7h9k2m4n6p]
others:
  description:
    - Pods named like this deployment's pods (O(name_prefix)) that the state does not know and that are another
      deployment's (C(deployment) set) or not made by gpuops (C(deployment) null). Never touched.
    - Empty without O(name_prefix).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 2b8d4f6h1j
      name: gpuops-0
      status: RUNNING
      cost_per_hr: 0.69
      deployment: null
cost_per_hr:
  description: What the orphans cost together now, in US dollars per hour (before any purge).
  returned: always
  type: float
  sample: 0.69
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    RunPodAPIError,
    RunPodNotFound,
    find_orphans,
    pod_deployment,
    valid_deployment_id,
)
from ansible_collections.gpuops.platform.plugins.module_utils._runpod_module import (
    client_from_module,
    fail_from_error,
    pod_result,
    runpod_argument_spec,
)


def view(pod) -> dict:
    """runpod_pod_info's view of a pod, plus the deployment it is tagged with."""
    return dict(pod_result(pod), deployment=pod_deployment(pod))


def main() -> None:
    argument_spec = runpod_argument_spec()
    argument_spec.update(
        deployment_id=dict(type="str", required=True),
        known_ids=dict(type="list", elements="str", required=True),
        name_prefix=dict(type="str"),
        purge=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not valid_deployment_id(params["deployment_id"]):
        module.fail_json(msg="deployment_id %r is not a gpuops deployment id (8 to 64 lowercase letters and digits, "
                             "as in <state dir>/<cloud>/deployment-id). Nothing was changed." % params["deployment_id"])
    client = client_from_module(module)
    try:
        found = find_orphans(client.list_pods(), params["deployment_id"], params["known_ids"], params["name_prefix"])
    except RunPodAPIError as err:
        fail_from_error(module, err)

    result = dict(
        changed=False,
        orphans=[view(pod) for pod in found.orphans],
        others=[view(pod) for pod in found.others],
        terminated=[],
        cost_per_hr=round(sum(pod.cost or 0.0 for pod in found.orphans), 4),
    )
    if not params["purge"] or not found.orphans:
        module.exit_json(**result)
    result["changed"] = True
    if module.check_mode:
        module.exit_json(**result)
    for pod in found.orphans:
        try:
            client.delete_pod(pod.id)
        except RunPodNotFound:
            continue  # gone meanwhile: nothing left to terminate
        except RunPodAPIError as err:
            module.fail_json(
                msg="could not terminate orphan pod %s (%s): %s. Terminated before it: %s. Run again, or terminate "
                    "it in the RunPod console." % (pod.id, pod.name, err.message, ", ".join(result["terminated"])
                                                   or "none"),
                **result)
        result["terminated"].append(pod.id)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
