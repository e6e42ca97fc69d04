# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    DEFAULT_BASE_URL,
    Pod,
    RunPodAPIError,
    RunPodAuthError,
    RunPodClient,
    RunPodNotFound,
    RunPodUnreachable,
)


# -- Pod.from_api ---------------------------------------------------------------


def test_pod_from_running_reply(load_fixture):
    data = load_fixture("pod_running.json")
    pod = Pod.from_api(data)
    assert pod.id == data["id"]
    assert pod.name == data["name"]
    assert pod.desired_status == "RUNNING"
    assert pod.public_ip == data["publicIp"]
    assert pod.ssh_port == int(data["portMappings"]["22"])
    assert pod.port_mappings == data["portMappings"]
    assert pod.gpu_type_id == data["gpu"]["id"]
    assert pod.gpu_count == data["gpu"]["count"]
    assert pod.cost_per_hr == float(data["costPerHr"])
    assert pod.interruptible is data["interruptible"]
    assert pod.image == data["image"]
    assert pod.raw == data
    assert pod.ssh_ready


def test_pod_while_initialising_has_no_ssh_details(load_fixture):
    pod = Pod.from_api(load_fixture("pod_initialising.json"))
    assert pod.public_ip is None
    assert pod.ssh_port is None
    assert pod.port_mappings == {}
    assert not pod.ssh_ready


@pytest.mark.parametrize("state, status", [("exited", "EXITED"), ("terminated", "TERMINATED")])
def test_pod_stopped_states(load_fixture, state, status):
    pod = Pod.from_api(load_fixture("pod_%s.json" % state))
    assert pod.desired_status == status
    assert not pod.ssh_ready


def test_pod_tolerates_loose_types():
    # costPerHr is a string in RunPod's own example; empty publicIp means "not yet"
    pod = Pod.from_api({"id": "abc", "costPerHr": "0.74", "publicIp": "", "portMappings": {"22": "10341"}, "gpu": None})
    assert pod.cost_per_hr == 0.74
    assert pod.public_ip is None
    assert pod.ssh_port == 10341
    assert pod.gpu_type_id is None
    assert not pod.ssh_ready


def test_pod_gpu_type_falls_back_to_machine():
    pod = Pod.from_api({"id": "abc", "machine": {"gpuTypeId": "NVIDIA L4"}})
    assert pod.gpu_type_id == "NVIDIA L4"


@pytest.mark.parametrize("data", [None, [], {}, {"id": ""}, "pod"])
def test_pod_without_id_is_an_error(data):
    with pytest.raises(RunPodAPIError, match="no id"):
        Pod.from_api(data)


# -- the client against a real HTTP server ----------------------------------------------


def client_for(server, **kwargs):
    kwargs.setdefault("api_key", server.api_key)
    return RunPodClient(base_url=server.base_url, **kwargs)


def test_get_pod_sends_bearer_key(runpod_api, load_fixture):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    pod = client_for(runpod_api).get_pod(data["id"])
    assert pod.id == data["id"]
    method, path, auth = runpod_api.requests[-1]
    assert (method, path, auth) == ("GET", "/v1/pods/" + data["id"], "Bearer test-key")


def test_trailing_slash_in_base_url(runpod_api, load_fixture):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    client = RunPodClient(api_key="test-key", base_url=runpod_api.base_url + "/")
    assert client.get_pod(data["id"]).id == data["id"]


def test_pod_id_is_quoted(runpod_api):
    with pytest.raises(RunPodNotFound):
        client_for(runpod_api).get_pod("../healthz")
    assert runpod_api.requests[-1][1] == "/v1/pods/..%2Fhealthz"


def test_list_pods(runpod_api, load_fixture):
    first = load_fixture("pod_running.json")
    second = dict(load_fixture("pod_initialising.json"), id="second", name="gpuops-1")
    runpod_api.set_pod(first["id"], first)
    runpod_api.set_pod("second", second)
    pods = client_for(runpod_api).list_pods()
    assert sorted(p.id for p in pods) == sorted([first["id"], "second"])


def test_create_pod(runpod_api):
    pod = client_for(runpod_api).create_pod({"name": "gpuops-9", "imageName": "runpod/base", "gpuCount": 1})
    assert pod.id == "created1"
    assert pod.name == "gpuops-9"


def test_delete_pod_answers_204(runpod_api, load_fixture):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    client = client_for(runpod_api)
    assert client.delete_pod(data["id"]) is None
    with pytest.raises(RunPodNotFound):
        client.delete_pod(data["id"])


def test_missing_pod_is_not_found(runpod_api):
    with pytest.raises(RunPodNotFound) as err:
        client_for(runpod_api).get_pod("gone")
    assert err.value.status == 404
    assert "/v1/pods/gone" in str(err.value)


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(runpod_api):
    secret = "rpa_THIS-KEY-MUST-NOT-LEAK"
    with pytest.raises(RunPodAuthError) as err:
        client_for(runpod_api, api_key=secret).get_pod("xedezhzb9la3ye")
    message = str(err.value)
    assert err.value.status == 401
    assert "RUNPOD_API_KEY" in message and "api_key" in message
    assert runpod_api.base_url in message
    # the server echoed the Authorization header back in its body
    assert secret not in message
    assert "********" in message


def test_403_is_an_auth_error(runpod_api):
    runpod_api.set_pod("p", (403, {"error": "forbidden"}))
    with pytest.raises(RunPodAuthError) as err:
        client_for(runpod_api).get_pod("p")
    assert err.value.status == 403


def test_other_http_errors_carry_status_and_body(runpod_api):
    runpod_api.set_pod("p", (500, {"error": "internal"}))
    with pytest.raises(RunPodAPIError) as err:
        client_for(runpod_api).get_pod("p")
    assert not isinstance(err.value, (RunPodAuthError, RunPodNotFound, RunPodUnreachable))
    assert err.value.status == 500
    assert "HTTP 500" in str(err.value) and "internal" in str(err.value)


def test_body_that_is_not_json(runpod_api):
    with pytest.raises(RunPodAPIError, match="not JSON"):
        client_for(runpod_api).request("GET", "notjson")


def test_unexpected_status(runpod_api):
    with pytest.raises(RunPodAPIError) as err:
        client_for(runpod_api).request("GET", "pods/x", expected=(201,))
    assert err.value.status in (200, 404)


def test_connection_refused_is_unreachable_with_hints(closed_port_url):
    with pytest.raises(RunPodUnreachable) as err:
        RunPodClient(api_key="k-must-not-leak", base_url=closed_port_url, timeout=2).get_pod("abc")
    message = str(err.value)
    assert closed_port_url in message
    assert "python -m localcloud start" in message and "make cloud-up" in message
    assert "network" in message
    assert "k-must-not-leak" not in message


def test_dns_failure_is_unreachable():
    with pytest.raises(RunPodUnreachable) as err:
        RunPodClient(api_key="k", base_url="http://runpod.invalid/v1", timeout=2).get_pod("abc")
    assert "http://runpod.invalid/v1" in str(err.value)


def test_timeout_is_unreachable(runpod_api, load_fixture):
    runpod_api.set_pod("p", load_fixture("pod_running.json"))
    runpod_api.delay = 2
    with pytest.raises(RunPodUnreachable) as err:
        client_for(runpod_api, timeout=0.3).get_pod("p")
    assert runpod_api.base_url in str(err.value)


def test_empty_key_is_refused():
    with pytest.raises(RunPodAuthError, match="RUNPOD_API_KEY"):
        RunPodClient(api_key="")


def test_repr_hides_key():
    client = RunPodClient(api_key="rpa_SECRET")
    assert "rpa_SECRET" not in repr(client)
    assert client.base_url == DEFAULT_BASE_URL
