#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: runpod_pod_info
short_description: List RunPod pods through the REST API v1
version_added: 0.1.0
description:
  - Lists the pods of a RunPod account, or of the local RunPod-compatible cloud that gpuops ships, through C(GET /pods).
  - Filters them by name (a deployment's pods are named C(<prefix>-<index>)) or by id.
  - Used by teardown to prove that no pod of a deployment is left billing.
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
  base_url:
    description:
      - If not set, the value of the E(RUNPOD_BASE_URL) environment variable is used, then the default.
  api_key:
    description:
      - If not set, the value of the E(RUNPOD_API_KEY) environment variable is used.
  name_regex:
    description:
      - Only return pods whose name matches this regular expression (Python C(re.search)).
      - For example V(^gpuops-[0-9]+$) selects the pods of deployment C(gpuops).
    type: str
  ids:
    description:
      - Only return pods with these ids.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: List the pods of deployment gpuops
  gpuops.platform.runpod_pod_info:
    name_regex: "^gpuops-[0-9]+$"
  register: pods

- name: List the local cloud's pods
  gpuops.platform.runpod_pod_info:
    base_url: http://127.0.0.1:8765/v1
    api_key_file: .gpuops/localcloud/api_key
  register: local_pods
"""

RETURN = r"""
pods:
  description: The matching pods, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Pod id.
      type: str
      sample: 3x9kq2h7c1b0aa
    name:
      description: Pod name.
      type: str
      sample: gpuops-0
    desired_status:
      description: V(RUNNING), V(EXITED) or V(TERMINATED).
      type: str
      sample: RUNNING
    public_ip:
      description: Public IP address, null while the pod initialises.
      type: str
      sample: 203.0.113.7
    ssh_port:
      description: Public port mapped to the pod's port 22, null while the pod initialises.
      type: int
      sample: 10341
    gpu_type_id:
      description: GPU type.
      type: str
      sample: NVIDIA GeForce RTX 4090
    gpu_count:
      description: Number of GPUs.
      type: int
      sample: 1
    cost_per_hr:
      description: Cost per hour in US dollars.
      type: float
      sample: 0.69
    interruptible:
      description: Whether the pod is a spot pod.
      type: bool
      sample: false
"""

import re

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    DEFAULT_BASE_URL,
    RunPodAPIError,
    RunPodClient,
)


def _read_key(module: AnsibleModule) -> str:
    key = module.params["api_key"]
    if key:
        return key
    path = module.params["api_key_file"]
    if not path:
        module.fail_json(msg="no RunPod API key: set RUNPOD_API_KEY, api_key or api_key_file")
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.read().strip()
    except OSError as err:
        module.fail_json(msg="cannot read the API key file %s: %s" % (path, err.strerror))
    if not key:
        module.fail_json(msg="the API key file %s is empty" % path)
    return key


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            base_url=dict(type="str", default=DEFAULT_BASE_URL, fallback=(env_fallback, ["RUNPOD_BASE_URL"])),
            api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["RUNPOD_API_KEY"])),
            api_key_file=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            request_timeout=dict(type="int", default=30),
            name_regex=dict(type="str"),
            ids=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    pattern = None
    if module.params["name_regex"] is not None:
        try:
            pattern = re.compile(module.params["name_regex"])
        except re.error as err:
            module.fail_json(msg="name_regex %r is not a valid regular expression: %s" % (module.params["name_regex"], err))

    client = RunPodClient(
        api_key=_read_key(module),
        base_url=module.params["base_url"],
        timeout=module.params["request_timeout"],
        validate_certs=module.params["validate_certs"],
    )
    try:
        pods = client.list_pods()
    except RunPodAPIError as err:
        module.fail_json(msg=err.message, url=err.url, status=err.status)

    wanted_ids = set(module.params["ids"] or [])
    selected = [
        pod for pod in pods
        if (pattern is None or pattern.search(pod.name or ""))
        and (not wanted_ids or pod.id in wanted_ids)
    ]
    result = [
        dict(
            id=pod.id,
            name=pod.name,
            desired_status=pod.desired_status,
            public_ip=pod.public_ip,
            ssh_port=pod.ssh_port,
            gpu_type_id=pod.gpu_type_id,
            gpu_count=pod.gpu_count,
            cost_per_hr=pod.cost_per_hr,
            interruptible=pod.interruptible,
        )
        for pod in sorted(selected, key=lambda p: (p.name or "", p.id))
    ]
    module.exit_json(changed=False, pods=result)


if __name__ == "__main__":
    main()
