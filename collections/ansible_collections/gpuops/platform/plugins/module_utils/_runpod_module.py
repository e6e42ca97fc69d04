# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the runpod_* modules share: the options of the gpuops.platform.runpod doc fragment and the client they build.

Private to the collection: the interface may change without notice.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_TIMEOUT,
    RunPodAPIError,
    RunPodClient,
)


def runpod_argument_spec() -> dict:
    """The options of the gpuops.platform.runpod doc fragment, with the module-side environment fallbacks."""
    return dict(
        base_url=dict(type="str", default=DEFAULT_BASE_URL, fallback=(env_fallback, ["RUNPOD_BASE_URL"])),
        api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["RUNPOD_API_KEY"])),
        api_key_file=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        request_timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        max_retries=dict(type="int", default=DEFAULT_MAX_RETRIES),
        max_retry_wait=dict(type="int", default=int(DEFAULT_MAX_RETRY_WAIT)),
    )


def read_api_key(module: AnsibleModule) -> str:
    """O(api_key), else the stripped content of O(api_key_file); fails the module with what to set."""
    key = module.params["api_key"]
    if key:
        return key.strip()
    path = module.params["api_key_file"]
    if not path:
        module.fail_json(msg="no RunPod API key: set RUNPOD_API_KEY, or the api_key or api_key_file option")
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.read().strip()
    except OSError as err:
        module.fail_json(msg="cannot read the RunPod API key file %s: %s; the local cloud writes it when it first "
                             "starts (`python -m localcloud start`), for RunPod set RUNPOD_API_KEY instead"
                             % (path, err.strerror))
    if not key:
        module.fail_json(msg="the RunPod API key file %s is empty" % path)
    return key


def client_from_module(module: AnsibleModule) -> RunPodClient:
    """A client configured by the module's doc-fragment options."""
    params = module.params
    try:
        return RunPodClient(
            api_key=read_api_key(module),
            base_url=params["base_url"],
            timeout=params["request_timeout"],
            validate_certs=params["validate_certs"],
            max_retries=params["max_retries"],
            max_retry_wait=params["max_retry_wait"],
        )
    except RunPodAPIError as err:
        module.fail_json(msg=err.message)
        raise  # not reached: fail_json exits


def fail_from_error(module: AnsibleModule, err: RunPodAPIError) -> None:
    """Fail the module with the error's message and what the API said."""
    module.fail_json(msg=err.message, url=err.url, status=err.status, title=err.title, detail=err.detail,
                     errors=err.errors)


def pod_result(pod) -> dict:
    """The documented view of one pod (the ``pods`` that runpod_pod_info returns)."""
    return dict(
        id=pod.id,
        name=pod.name,
        status=pod.status,
        actions=list(pod.actions),
        image=pod.image,
        gpu_type_id=pod.gpu_type_id,
        gpu_count=pod.gpu_count,
        cloud=pod.cloud,
        data_center_id=pod.data_center_id,
        cost_per_hr=pod.cost,
        ssh_host=pod.ssh_host,
        ssh_port=pod.ssh_port,
        ssh_ready=pod.ssh_ready,
        global_networking=pod.global_networking.as_dict(),
        created_at=pod.created_at,
        started_at=pod.started_at,
        host_key_alias=pod.host_key_alias,
    )
