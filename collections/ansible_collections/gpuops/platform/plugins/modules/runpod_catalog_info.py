#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: runpod_catalog_info
short_description: Read RunPod's catalog of GPU types and data centres through the REST API v2
version_added: 0.1.0
description:
  - Returns RunPod's GPU types (C(GET /v2/catalog/gpus)) and data centres (C(GET /v2/catalog/datacenters)), from RunPod
    or from the local RunPod-compatible cloud that gpuops ships.
  - With O(availability=true) it asks for the current pod stock of O(gpu_count) GPUs in O(cloud)
    (C(include=AVAILABILITY&product=POD&count=...&cloud=...)); each GPU type then carries C(availability)
    (V(NONE), V(LOW), V(MEDIUM) or V(HIGH)) and C(dataCenters), and RV(in_stock) lists the GPU types that are not V(NONE).
  - Meant for a preflight before creating pods - the GPU type exists, it is in stock, the data centre offers global
    networking - and for naming the GPU types in stock when RunPod has no capacity for the one asked for.
    Stock can change between this read and the creation of a pod; it is a hint, not a reservation.
  - Retries the requests when the API rate-limits them (HTTP 429, after C(Retry-After)) or answers 502, 503 or 504,
    within O(max_retries) and O(max_retry_wait).
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
  availability:
    description:
      - Ask for the current stock of each GPU type for pods (C(include=AVAILABILITY&product=POD)), for O(gpu_count) GPUs
        on one pod in O(cloud).
      - Without it, RV(gpu_types) carry no C(availability) and RV(in_stock) is empty.
    type: bool
    default: false
  gpu_count:
    description:
      - Number of GPUs on one pod that the stock is asked for. Used only with O(availability=true).
    type: int
    default: 1
  cloud:
    description:
      - The cloud that the stock is asked for. Used only with O(availability=true).
    type: str
    choices: [SECURE, COMMUNITY]
    default: SECURE
  data_centers:
    description:
      - Also read the data centres (C(GET /v2/catalog/datacenters)). Without it RV(data_centers) is empty.
    type: bool
    default: true
notes:
  - RunPod quotes prices per GPU and hour; the price of a pod is the figure times its GPU count.
seealso:
  - module: gpuops.platform.runpod_pod_info
  - name: RunPod REST API v2, List GPU types
    description: The C(GpuType) object and its availability.
    link: https://docs.runpod.io/api-reference-v2/catalog/list-gpu-types
  - name: RunPod REST API v2, List data centers
    description: The C(DataCenter) object and C(globalNetwork).
    link: https://docs.runpod.io/api-reference-v2/catalog/list-data-centers
"""

EXAMPLES = r"""
- name: Read the GPU types in stock for two GPUs per pod on the secure cloud
  gpuops.platform.runpod_catalog_info:
    availability: true
    gpu_count: 2
    cloud: SECURE
  register: catalog

- name: Fail early when the GPU type is not in stock, naming the ones that are
  ansible.builtin.assert:
    that: gpu_type_id in catalog.in_stock
    fail_msg: >-
      RunPod has no {{ gpu_type_id }} in stock for 2 GPUs per pod now.
      In stock: {{ catalog.in_stock | join(', ') or 'none' }}.

- name: Keep the data centres that offer global networking
  ansible.builtin.set_fact:
    global_dcs: "{{ catalog.data_centers | selectattr('globalNetwork') | map(attribute='id') | list }}"

- name: Read the local cloud's catalog
  gpuops.platform.runpod_catalog_info:
    base_url: http://127.0.0.1:8765/v2
    api_key_file: .gpuops/localcloud/api_key
    availability: true
  register: local_catalog
"""

RETURN = r"""
gpu_types:
  description:
    - RunPod's C(GpuType) objects as the API returns them (camelCase keys), in the API's order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: GPU type id, the value of C(gpu.id) when creating a pod.
      type: str
      sample: NVIDIA GeForce RTX 4090
    name:
      description: Display name.
      type: str
      sample: RTX 4090
    manufacturer:
      description: V(NVIDIA), V(AMD) or V(UNKNOWN).
      type: str
      sample: NVIDIA
    memory:
      description: Memory of one GPU in GB.
      type: int
      sample: 24
    secure:
      description: Whether the secure cloud offers this type.
      type: bool
      sample: true
    community:
      description: Whether the community cloud offers this type.
      type: bool
      sample: true
    price:
      description: List price of one GPU per hour in US dollars, per cloud (C(secure), C(community), C(serverless)).
      type: dict
      sample: {secure: 0.44, community: 0.31, serverless: 1.1}
    maxCount:
      description: The most GPUs of this type on one pod, per cloud (a ceiling, not stock).
      type: dict
      sample: {secure: 8, community: 4}
    availability:
      description: Stock for the requested count and cloud - V(NONE), V(LOW), V(MEDIUM) or V(HIGH).
      returned: with O(availability=true)
      type: str
      sample: HIGH
    dataCenters:
      description: Stock per data centre (C(id), C(name), C(availability)); absent when unavailable everywhere.
      returned: with O(availability=true), when some data centre offers the type
      type: list
      elements: dict
      sample: [{id: US-KS-2, name: US Kansas 2, availability: HIGH}]
    cudaVersions:
      description: CUDA versions of the machines with this type (C(version), C(available)).
      returned: with O(availability=true), when the machines report them
      type: list
      elements: dict
data_centers:
  description:
    - RunPod's C(DataCenter) objects as the API returns them (camelCase keys); empty with O(data_centers=false).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Data centre id, as in C(dataCenterIds) when creating a pod.
      type: str
      sample: US-KS-2
    name:
      description: Display name.
      type: str
      sample: US Kansas 2
    region:
      description: Continental region, for example V(NORTH_AMERICA) or V(EUROPE).
      type: str
      sample: NORTH_AMERICA
    globalNetwork:
      description: Whether the data centre offers global networking (pods reach each other at C(<podId>.runpod.internal)).
      type: bool
      sample: true
    networkVolumeTypes:
      description: Network volume tiers of the data centre.
      type: list
      elements: str
      sample: [STANDARD, HIGH_PERFORMANCE]
    compliance:
      description: Compliance certifications of the data centre.
      type: list
      elements: str
      sample: [SOC_2_TYPE_2, ISO_IEC_27001]
in_stock:
  description:
    - Ids of the GPU types whose C(availability) for O(gpu_count) GPUs in O(cloud) is not V(NONE), in the API's order.
    - Empty without O(availability=true).
  returned: always
  type: list
  elements: str
  sample: [NVIDIA GeForce RTX 4090]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import CLOUDS, RunPodAPIError, in_stock
from ansible_collections.gpuops.platform.plugins.module_utils._runpod_module import (
    client_from_module,
    fail_from_error,
    runpod_argument_spec,
)


def main() -> None:
    argument_spec = runpod_argument_spec()
    argument_spec.update(
        availability=dict(type="bool", default=False),
        gpu_count=dict(type="int", default=1),
        cloud=dict(type="str", choices=list(CLOUDS), default="SECURE"),
        data_centers=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["gpu_count"] < 1:
        module.fail_json(msg="gpu_count must be 1 or more, got %d" % params["gpu_count"])
    client = client_from_module(module)
    try:
        if params["availability"]:
            gpu_types = client.list_gpu_types(include_availability=True, product="POD", count=params["gpu_count"],
                                              cloud=params["cloud"])
        else:
            gpu_types = client.list_gpu_types()
        data_centers = client.list_data_centers() if params["data_centers"] else []
    except RunPodAPIError as err:
        fail_from_error(module, err)
    module.exit_json(
        changed=False,
        gpu_types=gpu_types,
        data_centers=data_centers,
        in_stock=in_stock(gpu_types) if params["availability"] else [],
    )


if __name__ == "__main__":
    main()
