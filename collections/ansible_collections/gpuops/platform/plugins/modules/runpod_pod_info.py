#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: runpod_pod_info
short_description: List RunPod pods through the REST API v2
version_added: 0.1.0
description:
  - Lists the pods of a RunPod account, or of the local RunPod-compatible cloud that gpuops ships, through
    C(GET /v2/pods).
  - Selects them by id (O(ids)) and/or by exact name (O(names)), so that a deployment looks only at its own pods.
    With neither, every pod of the account is returned.
  - Used by teardown to prove that no pod of a deployment is left billing, and by provisioning to find stopped pods.
  - Retries the request when the API rate-limits it (HTTP 429, after C(Retry-After)) or answers 502, 503 or 504, within
    O(max_retries) and O(max_retry_wait).
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - gpuops.platform.runpod
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  ids:
    description:
      - Only return pods with these ids (for example the ids in the deployment's Terraform state).
      - An empty list selects no pod. With O(names) too, a pod must match both.
    type: list
    elements: str
  names:
    description:
      - Only return pods with exactly these names (for example V(gpuops-0), V(gpuops-1)).
      - An empty list selects no pod. With O(ids) too, a pod must match both.
    type: list
    elements: str
  include_cluster_pods:
    description:
      - Also list the member pods of Instant Clusters, which C(GET /v2/pods) leaves out by default.
    type: bool
    default: false
notes:
  - Stopped pods (C(EXITED)) are listed too, because they still hold their disk and may be billed for it.
seealso:
  - module: gpuops.platform.runpod_catalog_info
  - plugin: gpuops.platform.runpod
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: List the pods of deployment gpuops by name
  gpuops.platform.runpod_pod_info:
    names: "{{ range(3) | map('regex_replace', '^', 'gpuops-') | list }}"
  register: pods

- name: Look up the pods of the Terraform state by id
  gpuops.platform.runpod_pod_info:
    ids: "{{ terraform_pods.values() | map(attribute='id') | list }}"
  register: pods

- name: List the local cloud's pods
  gpuops.platform.runpod_pod_info:
    base_url: http://127.0.0.1:8765/v2
    api_key_file: .gpuops/localcloud/api_key
  register: local_pods
"""

RETURN = r"""
pods:
  description: The matching pods, sorted by name, then id.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Pod id.
      type: str
      sample: 7h9k2m4n6p
    name:
      description: Pod name.
      type: str
      sample: gpuops-0
    status:
      description: V(PROVISIONING), V(STARTING), V(RUNNING), V(EXITED), V(ERROR) or V(TERMINATED).
      type: str
      sample: RUNNING
    actions:
      description: The actions valid in this status (C(start), C(stop), C(restart), C(terminate)).
      type: list
      elements: str
      sample: [stop, restart, terminate]
    image:
      description: Container image.
      type: str
      sample: runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404
    gpu_type_id:
      description: GPU type; null for a CPU pod.
      type: str
      sample: NVIDIA GeForce RTX 4090
    gpu_count:
      description: Number of GPUs; null for a CPU pod.
      type: int
      sample: 1
    cloud:
      description: V(SECURE) or V(COMMUNITY).
      type: str
      sample: SECURE
    data_center_id:
      description: Data centre the pod runs in; null until the scheduler assigns one.
      type: str
      sample: US-KS-2
    cost_per_hr:
      description: The pod's current cost in US dollars per hour (0 when C(EXITED) or C(TERMINATED)).
      type: float
      sample: 0.44
    ssh_host:
      description: Host of C(ssh.direct), the pod's sshd through its published 22/tcp port; null until then.
      type: str
      sample: 195.26.233.3
    ssh_port:
      description: Port of C(ssh.direct); null until the pod runs with 22/tcp published.
      type: int
      sample: 34446
    ssh_ready:
      description: Whether the pod is C(RUNNING) and has C(ssh.direct).
      type: bool
      sample: true
    global_networking:
      description: The pod's global networking.
      type: dict
      contains:
        enabled:
          description: Whether the pod has a global-networking address.
          type: bool
          sample: true
        ip:
          description: The pod's global-networking IP address; null when disabled.
          type: str
          sample: 10.65.1.42
        internal_dns:
          description: The pod's name on the global network, C(<podId>.runpod.internal); null when disabled.
          type: str
          sample: 7h9k2m4n6p.runpod.internal
    created_at:
      description: When the pod was created (RFC 3339).
      type: str
      sample: "2026-06-01T12:00:00Z"
    started_at:
      description: When the pod's container last started (RFC 3339); null before the first start.
      type: str
      sample: "2026-06-01T12:02:00Z"
    host_key_alias:
      description:
        - C(runpod-<podId>-<startedAt as UTC epoch seconds>), the SSH C(HostKeyAlias) of this start of the pod;
          null before the first start.
      type: str
      sample: runpod-7h9k2m4n6p-1780315320
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import RunPodAPIError
from ansible_collections.gpuops.platform.plugins.module_utils._runpod_module import (
    client_from_module,
    fail_from_error,
    pod_result,
    runpod_argument_spec,
)


def main() -> None:
    argument_spec = runpod_argument_spec()
    argument_spec.update(
        ids=dict(type="list", elements="str"),
        names=dict(type="list", elements="str"),
        include_cluster_pods=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = client_from_module(module)
    try:
        pods = client.list_pods(include_cluster_pods=module.params["include_cluster_pods"])
    except RunPodAPIError as err:
        fail_from_error(module, err)

    wanted_ids = set(module.params["ids"]) if module.params["ids"] is not None else None
    wanted_names = set(module.params["names"]) if module.params["names"] is not None else None
    selected = [
        pod for pod in pods
        if (wanted_ids is None or pod.id in wanted_ids) and (wanted_names is None or pod.name in wanted_names)
    ]
    result = [pod_result(pod) for pod in sorted(selected, key=lambda p: (p.name or "", p.id))]
    module.exit_json(changed=False, pods=result)


if __name__ == "__main__":
    main()
