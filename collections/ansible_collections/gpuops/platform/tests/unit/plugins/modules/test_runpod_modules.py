# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of runpod_pod_info and runpod_catalog_info against a real HTTP server on 127.0.0.1.

The server answers with RunPod's own v2 examples (the fixtures' README says which).
"""

from __future__ import annotations

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import host_key_alias
from ansible_collections.gpuops.platform.plugins.modules import runpod_catalog_info, runpod_pod_info
from ansible_collections.gpuops.platform.tests.unit.plugins.modules.module_harness import ExitJson, FailJson, patch_module_exits


@pytest.fixture(autouse=True)
def _exits(monkeypatch):
    patch_module_exits(monkeypatch)


def run(module, **args):
    with patch_module_args(args):
        try:
            module.main()
        except ExitJson as done:
            return False, done.args[0]
        except FailJson as failed:
            return True, failed.args[0]
    raise AssertionError("the module neither exited nor failed")


@pytest.fixture
def pods(runpod_api, load_fixture):
    """The running controller, a stopped pod and a pod of another deployment."""
    running = load_fixture("pod_running.json")
    exited = load_fixture("pod_exited.json")
    other = dict(load_fixture("pod_running.json"), id="otherdeploy01", name="other-0")
    for pod in (running, exited, other):
        runpod_api.set_pod(pod["id"], pod)
    return {"running": running, "exited": exited, "other": other}


def common(runpod_api, **args):
    return dict(base_url=runpod_api.base_url, api_key="test-key", **args)


# -- runpod_pod_info ----------------------------------------------------------------------


def test_pod_info_returns_every_pod_sorted_with_the_v2_view(runpod_api, pods):
    failed, result = run(runpod_pod_info, **common(runpod_api))
    assert not failed, result
    assert result["changed"] is False
    assert [p["name"] for p in result["pods"]] == sorted(p["name"] for p in pods.values())
    view = next(p for p in result["pods"] if p["id"] == pods["running"]["id"])
    reply = pods["running"]
    assert view == {
        "id": reply["id"], "name": reply["name"], "status": "RUNNING", "actions": reply["actions"],
        "image": reply["image"], "gpu_type_id": reply["gpu"]["id"], "gpu_count": reply["gpu"]["count"],
        "cloud": reply["cloud"], "data_center_id": reply["dataCenterId"], "cost_per_hr": reply["cost"],
        "ssh_host": reply["ssh"]["direct"]["host"], "ssh_port": reply["ssh"]["direct"]["port"], "ssh_ready": True,
        "global_networking": {"enabled": True, "ip": reply["globalNetworking"]["ip"],
                              "internal_dns": reply["globalNetworking"]["internalDns"]},
        "created_at": reply["createdAt"], "started_at": reply["startedAt"], "host_key_alias": host_key_alias(reply),
    }
    stopped = next(p for p in result["pods"] if p["id"] == pods["exited"]["id"])
    assert (stopped["status"], stopped["cost_per_hr"], stopped["ssh_ready"], stopped["ssh_host"]) == ("EXITED", 0, False, None)


def test_pod_info_by_ids_and_names(runpod_api, pods):
    ours = [pods["running"]["id"], pods["exited"]["id"]]
    _failed, result = run(runpod_pod_info, **common(runpod_api, ids=ours))
    assert sorted(p["id"] for p in result["pods"]) == sorted(ours)
    _failed, result = run(runpod_pod_info, **common(runpod_api, names=[pods["exited"]["name"]]))
    assert [p["id"] for p in result["pods"]] == [pods["exited"]["id"]]
    _failed, result = run(runpod_pod_info, **common(runpod_api, ids=ours, names=["other-0"]))
    assert result["pods"] == []
    # a name is matched exactly, never as a pattern
    _failed, result = run(runpod_pod_info, **common(runpod_api, names=["gpuops"]))
    assert result["pods"] == []
    _failed, result = run(runpod_pod_info, **common(runpod_api, ids=[]))
    assert result["pods"] == []


def test_pod_info_in_check_mode_reads(runpod_api, pods):
    failed, result = run(runpod_pod_info, _ansible_check_mode=True, **common(runpod_api, names=["other-0"]))
    assert not failed and [p["id"] for p in result["pods"]] == ["otherdeploy01"]


def test_pod_info_key_from_file_and_environment(runpod_api, pods, tmp_path, monkeypatch):
    key_file = tmp_path / "api_key"
    key_file.write_text("test-key\n")
    failed, result = run(runpod_pod_info, base_url=runpod_api.base_url, api_key_file=str(key_file))
    assert not failed and len(result["pods"]) == 3
    monkeypatch.setenv("RUNPOD_API_KEY", "test-key")
    monkeypatch.setenv("RUNPOD_BASE_URL", runpod_api.base_url)
    failed, result = run(runpod_pod_info)
    assert not failed and len(result["pods"]) == 3


def test_pod_info_without_key(runpod_api):
    failed, result = run(runpod_pod_info, base_url=runpod_api.base_url)
    assert failed and "RUNPOD_API_KEY" in result["msg"] and "api_key_file" in result["msg"]


def test_pod_info_wrong_key_fails_without_the_key(runpod_api, pods):
    failed, result = run(runpod_pod_info, base_url=runpod_api.base_url, api_key="rpa_MUST_NOT_LEAK")
    assert failed and result["status"] == 401
    assert "rejected the API key" in result["msg"]
    assert "rpa_MUST_NOT_LEAK" not in repr(result)


def test_pod_info_v1_url_is_refused(runpod_api):
    failed, result = run(runpod_pod_info, base_url="http://127.0.0.1:8765/v1", api_key="k")
    assert failed and "REST v1" in result["msg"] and "https://api.runpod.io/v2" in result["msg"]


def test_pod_info_unreachable(closed_port_url):
    failed, result = run(runpod_pod_info, base_url=closed_port_url, api_key="k", request_timeout=2)
    assert failed and "cannot reach the RunPod API" in result["msg"] and "localcloud start" in result["msg"]


def test_pod_info_rate_limited(runpod_api, pods, load_api_fixture):
    answer = load_api_fixture("problems.json")["too_many_requests"]
    runpod_api.script("/v2/pods", (429, answer["body"], answer["headers"]))
    failed, result = run(runpod_pod_info, **common(runpod_api, max_retry_wait=3))
    assert failed and result["status"] == 429 and "3s allowed" in result["msg"]
    runpod_api.script("/v2/pods", (429, answer["body"], dict(answer["headers"], **{"Retry-After": "0"})))
    failed, result = run(runpod_pod_info, **common(runpod_api))
    assert not failed and len(result["pods"]) == 3


# -- runpod_catalog_info -----------------------------------------------------------------------


def test_catalog_without_availability(runpod_api, load_api_fixture):
    failed, result = run(runpod_catalog_info, **common(runpod_api))
    assert not failed, result
    assert result["gpu_types"] == load_api_fixture("catalog_gpus.json")["body"]["gpus"]
    assert result["data_centers"] == load_api_fixture("catalog_datacenters.json")["body"]["dataCenters"]
    assert result["in_stock"] == []
    assert [r[1] for r in runpod_api.requests] == ["/v2/catalog/gpus", "/v2/catalog/datacenters"]


def test_catalog_with_availability_names_the_types_in_stock(runpod_api, load_api_fixture):
    body = load_api_fixture("catalog_gpus_availability.json")["body"]
    listed = body["gpus"][0]
    # a second type that is out of stock everywhere: no dataCenters then (RunPod's OpenAPI)
    scarce = dict(listed, id="NVIDIA H100 80GB HBM3", name="H100 SXM", availability="NONE")
    del scarce["dataCenters"]
    runpod_api.catalog["gpus_availability"] = {"gpus": [listed, scarce]}
    failed, result = run(runpod_catalog_info, **common(runpod_api, availability=True, gpu_count=2, cloud="COMMUNITY",
                                                       data_centers=False))
    assert not failed, result
    assert result["in_stock"] == [listed["id"]]
    assert [g["availability"] for g in result["gpu_types"]] == ["HIGH", "NONE"]
    assert result["data_centers"] == []
    assert [r[1] for r in runpod_api.requests] == [
        "/v2/catalog/gpus?include=AVAILABILITY&product=POD&count=2&cloud=COMMUNITY"]


def test_catalog_in_check_mode(runpod_api):
    failed, result = run(runpod_catalog_info, _ansible_check_mode=True, **common(runpod_api, availability=True))
    assert not failed and result["in_stock"] == ["NVIDIA GeForce RTX 4090"]


@pytest.mark.parametrize("args, words", [
    ({"cloud": "SPOT"}, ["cloud", "SECURE", "COMMUNITY"]),
    ({"gpu_count": 0}, ["gpu_count must be 1 or more"]),
])
def test_catalog_invalid_arguments(runpod_api, args, words):
    failed, result = run(runpod_catalog_info, **common(runpod_api, **args))
    assert failed
    for word in words:
        assert word in result["msg"]
    assert not runpod_api.requests


def test_catalog_api_error_is_reported_with_the_problem(runpod_api, load_api_fixture):
    answer = load_api_fixture("problems.json")["forbidden"]
    runpod_api.script("/v2/catalog/gpus", (answer["status"], answer["body"], answer["headers"]))
    failed, result = run(runpod_catalog_info, **common(runpod_api))
    assert failed
    assert (result["status"], result["title"], result["detail"]) == (403, "Forbidden", "access denied")
    assert "RUNPOD_API_KEY" in result["msg"]
