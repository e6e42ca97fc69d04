# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests of the RunPod REST v2 client against a real HTTP server on 127.0.0.1.

The server's answers are RunPod's own examples from its v2 OpenAPI (see
fixtures/runpod/README.md and ../inventory/fixtures/README.md).
"""

from __future__ import annotations

import email.utils
import pathlib
import subprocess
import sys
import time

import pytest

from ansible_collections.gpuops.platform.plugins.module_utils import _runpod_api
from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    DEFAULT_BASE_URL,
    Pod,
    RunPodAPIError,
    RunPodAuthError,
    RunPodCapacityError,
    RunPodClient,
    RunPodConflict,
    RunPodNotFound,
    RunPodRateLimited,
    RunPodServerError,
    RunPodUnreachable,
    RunPodValidationError,
    ansible_transport,
    epoch_seconds,
    host_key_alias,
    in_stock,
    parse_rate_limit,
    parse_retry_after,
    rate_limit_wait,
    rejected_fields,
    urllib_transport,
)

TRANSPORTS = pytest.mark.parametrize("transport", [ansible_transport, urllib_transport], ids=["open_url", "urllib"])
MODULE_FILE = pathlib.Path(_runpod_api.__file__)


# -- Pod.from_api ---------------------------------------------------------------


def test_pod_from_running_reply(load_fixture):
    data = load_fixture("pod_running.json")
    pod = Pod.from_api(data)
    assert pod.id == data["id"]
    assert pod.name == data["name"]
    assert pod.status == "RUNNING"
    assert pod.actions == tuple(data["actions"])
    assert (pod.ssh_host, pod.ssh_port) == (data["ssh"]["direct"]["host"], data["ssh"]["direct"]["port"])
    assert pod.ssh_direct.username == data["ssh"]["direct"]["username"]
    assert pod.gpu_type_id == data["gpu"]["id"]
    assert pod.gpu_count == data["gpu"]["count"]
    assert pod.cost == data["cost"]
    assert pod.data_center_id == data["dataCenterId"]
    assert pod.cloud == data["cloud"]
    assert pod.cuda_version == data["cudaVersion"]
    assert pod.global_networking.as_dict() == {
        "enabled": True, "ip": data["globalNetworking"]["ip"], "internal_dns": data["globalNetworking"]["internalDns"]}
    assert pod.runtime_ports == tuple(data["runtime"]["ports"])
    assert pod.uptime == data["runtime"]["uptime"]
    assert (pod.created_at, pod.started_at) == (data["createdAt"], data["startedAt"])
    assert pod.image == data["image"]
    assert pod.raw == data
    assert pod.ssh_ready


def test_the_proxy_is_never_used_for_ssh(load_fixture):
    data = load_fixture("pod_starting.json")
    assert data["ssh"]["direct"] is None
    # the proxy of RunPod's own example (the local cloud has no proxy)
    data["ssh"]["proxy"] = {"host": "ssh.runpod.io", "port": 22, "username": "7h9k2m4n6p-64411eb2",
                            "command": "ssh 7h9k2m4n6p-64411eb2@ssh.runpod.io"}
    pod = Pod.from_api(data)
    assert (pod.ssh_host, pod.ssh_port, pod.ssh_ready) == (None, None, False)


@pytest.mark.parametrize("state, status", [("provisioning", "PROVISIONING"), ("starting", "STARTING"),
                                           ("exited", "EXITED"), ("error", "ERROR"), ("terminated", "TERMINATED")])
def test_pods_not_running_are_not_ready(load_fixture, state, status):
    pod = Pod.from_api(load_fixture("pod_%s.json" % state))
    assert pod.status == status
    assert not pod.ssh_ready


def test_ssh_direct_of_a_pod_not_running_is_not_ready(load_fixture):
    data = load_fixture("pod_running.json")
    data["status"] = "EXITED"
    assert not Pod.from_api(data).ssh_ready


def test_pod_tolerates_missing_parts():
    pod = Pod.from_api({"id": "abc", "cost": "0.74", "ssh": {"direct": {"host": "", "port": 22}}, "gpu": None,
                        "runtime": None, "globalNetworking": None})
    assert pod.cost == 0.74
    assert pod.ssh_direct is None and not pod.ssh_ready
    assert pod.gpu_type_id is None and pod.runtime_ports == ()
    assert pod.global_networking.as_dict() == {"enabled": False, "ip": None, "internal_dns": None}


@pytest.mark.parametrize("data", [None, [], {}, {"id": ""}, "pod"])
def test_pod_without_id_is_an_error(data):
    with pytest.raises(RunPodAPIError, match="no id"):
        Pod.from_api(data)


# -- host keys ---------------------------------------------------------------------


def test_host_key_alias_is_pod_id_and_start_in_epoch_seconds(load_fixture):
    data = load_fixture("pod_running.json")
    expected = "runpod-%s-%d" % (data["id"], epoch_seconds(data["startedAt"]))
    assert host_key_alias(data) == expected == host_key_alias(Pod.from_api(data)) == Pod.from_api(data).host_key_alias
    # the spec's example startedAt, 2026-06-01T12:02:00Z
    assert epoch_seconds("2026-06-01T12:02:00Z") == 1780315320


@pytest.mark.parametrize("text", ["2026-06-01T12:02:00Z", "2026-06-01T12:02:00.999Z", "2026-06-01T14:02:00+02:00",
                                  "2026-06-01T07:02:00.123456-05:00", "2026-06-01 12:02:00z"])
def test_start_times_in_any_offset_are_the_same_epoch(text):
    assert epoch_seconds(text) == 1780315320


def test_a_restart_changes_the_alias(load_fixture):
    data = load_fixture("pod_running.json")
    restarted = dict(data, startedAt="2026-06-01T13:00:00Z")
    assert host_key_alias(restarted) != host_key_alias(data)
    assert host_key_alias(restarted).startswith("runpod-%s-" % data["id"])


@pytest.mark.parametrize("started", [None, "", "yesterday", "2026-13-01T00:00:00Z"])
def test_no_alias_before_the_pod_started(started):
    assert host_key_alias({"id": "abc", "startedAt": started}) is None


# -- small parsers -------------------------------------------------------------------


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("12") == 12.0
    now = time.time()
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_rate_limit_header_from_the_spec(load_api_fixture):
    header = load_api_fixture("problems.json")["too_many_requests"]["headers"]["RateLimit"]
    assert parse_rate_limit(header) == {"minute": {"r": 0, "t": 12}, "hour": {"r": 2800, "t": 1812},
                                        "day": {"r": 49500, "t": 45012}}
    assert rate_limit_wait(header) == 12.0
    assert rate_limit_wait('"minute";r=5;t=12') is None


def test_rejected_fields(load_api_fixture):
    errors = load_api_fixture("problems.json")["unprocessable_fields"]["body"]["errors"]
    assert rejected_fields(errors) == ["bogus"]
    assert rejected_fields(["$: additional properties 'spot', 'bidPerGpu' not allowed", "$.gpu.count: must be >= 1",
                            "/cloud: value must be one of SECURE, COMMUNITY"]) == ["spot", "bidPerGpu", "gpu.count", "cloud"]


def test_in_stock(load_api_fixture):
    gpus = load_api_fixture("catalog_gpus_availability.json")["body"]["gpus"]
    assert in_stock(gpus) == [gpus[0]["id"]]
    assert in_stock([dict(gpus[0], availability="NONE"), {"id": "x"}, dict(gpus[0], id="y", availability="LOW")]) == ["y"]


# -- the client against a real HTTP server ----------------------------------------------


def client_for(server, **kwargs):
    kwargs.setdefault("api_key", server.api_key)
    return RunPodClient(base_url=server.base_url, **kwargs)


@TRANSPORTS
def test_get_pod_sends_bearer_key(runpod_api, load_fixture, transport):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    pod = client_for(runpod_api, transport=transport).get_pod(data["id"])
    assert pod.id == data["id"]
    method, path, auth = runpod_api.requests[-1]
    assert (method, path, auth) == ("GET", "/v2/pods/" + data["id"], "Bearer test-key")


def test_default_base_url_is_v2():
    assert DEFAULT_BASE_URL == "https://api.runpod.io/v2"
    assert RunPodClient(api_key="k").url("pods") == "https://api.runpod.io/v2/pods"


@pytest.mark.parametrize("url", ["https://rest.runpod.io/v1", "http://127.0.0.1:8765/v1/"])
def test_a_v1_base_url_is_refused_with_the_v2_url(url):
    with pytest.raises(RunPodAPIError) as err:
        RunPodClient(api_key="k", base_url=url)
    assert "retired REST v1" in str(err.value) and DEFAULT_BASE_URL in str(err.value)


def test_trailing_slash_in_base_url(runpod_api, load_fixture):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    client = RunPodClient(api_key="test-key", base_url=runpod_api.base_url + "/")
    assert client.get_pod(data["id"]).id == data["id"]


def test_pod_id_is_quoted(runpod_api):
    with pytest.raises(RunPodNotFound):
        client_for(runpod_api).get_pod("../healthz")
    assert runpod_api.requests[-1][1] == "/v2/pods/..%2Fhealthz"


@TRANSPORTS
def test_list_pods_unwraps_the_list(runpod_api, load_fixture, transport):
    first = load_fixture("pod_running.json")
    second = load_fixture("pod_exited.json")
    runpod_api.set_pod(first["id"], first)
    runpod_api.set_pod(second["id"], second)
    pods = client_for(runpod_api, transport=transport).list_pods()
    assert sorted(p.id for p in pods) == sorted([first["id"], second["id"]])
    assert runpod_api.requests[-1][1] == "/v2/pods"
    client_for(runpod_api).list_pods(include_cluster_pods=True)
    assert runpod_api.requests[-1][1] == "/v2/pods?includeClusterPods=true"


def test_a_bare_list_is_not_v2(runpod_api):
    runpod_api.script("/v2/pods", (200, []))
    with pytest.raises(RunPodAPIError) as err:
        client_for(runpod_api).list_pods()
    assert "{'pods': [...]}" in str(err.value) and "v2" in str(err.value)


def test_create_pod(runpod_api):
    pod = client_for(runpod_api).create_pod({"name": "gpuops-9", "image": "runpod/base", "gpu": {"id": "x", "count": 1}})
    assert (pod.id, pod.name, pod.status) == ("created1", "gpuops-9", "PROVISIONING")


def test_pod_actions(runpod_api, load_fixture):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    client = client_for(runpod_api)
    assert client.pod_action(data["id"], "stop").status == "EXITED"
    with pytest.raises(RunPodConflict) as err:
        client.pod_action(data["id"], "start")
    assert err.value.status == 409 and "not valid" in str(err.value) and "actions" in str(err.value)
    assert client.pod_action(data["id"], "terminate") is None
    with pytest.raises(RunPodAPIError, match="unknown pod action"):
        client.pod_action(data["id"], "reboot")


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
    assert (err.value.title, err.value.detail) == ("Not Found", "pod gone not found")
    assert "/v2/pods/gone" in str(err.value) and "pod gone not found" in str(err.value)


# -- catalog ----------------------------------------------------------------------------


def test_list_gpu_types_plain_and_with_availability(runpod_api, load_api_fixture):
    client = client_for(runpod_api)
    assert client.list_gpu_types() == load_api_fixture("catalog_gpus.json")["body"]["gpus"]
    assert runpod_api.requests[-1][1] == "/v2/catalog/gpus"
    gpus = client.list_gpu_types(include_availability=True, count=2, cloud="SECURE")
    assert gpus == load_api_fixture("catalog_gpus_availability.json")["body"]["gpus"]
    assert gpus[0]["availability"] == "HIGH"
    assert runpod_api.requests[-1][1] == "/v2/catalog/gpus?include=AVAILABILITY&product=POD&count=2&cloud=SECURE"


def test_availability_filters_are_sent_only_with_availability(runpod_api):
    client_for(runpod_api).list_gpu_types(count=2, cloud="SECURE")
    assert runpod_api.requests[-1][1] == "/v2/catalog/gpus"


def test_list_data_centers(runpod_api, load_api_fixture):
    client = client_for(runpod_api)
    centres = client.list_data_centers()
    assert centres == load_api_fixture("catalog_datacenters.json")["body"]["dataCenters"]
    assert centres[0]["globalNetwork"] is True
    client.list_data_centers(global_network=True, include_gpu_availability=True)
    assert runpod_api.requests[-1][1] == "/v2/catalog/datacenters?globalNetwork=true&include=GPU_AVAILABILITY"


# -- errors ----------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(runpod_api):
    secret = "rpa_THIS-KEY-MUST-NOT-LEAK"
    with pytest.raises(RunPodAuthError) as err:
        client_for(runpod_api, api_key=secret).get_pod("xedezhzb9la3ye")
    message = str(err.value)
    assert err.value.status == 401
    assert "RUNPOD_API_KEY" in message and "api_key" in message
    assert runpod_api.base_url in message
    # the server echoed the Authorization header back in its problem detail
    assert secret not in message and secret not in (err.value.detail or "")
    assert "********" in message


@pytest.mark.parametrize("problem, error_type, words", [
    ("unauthorized", RunPodAuthError, ["rejected the API key", "missing bearer token", "RUNPOD_API_KEY"]),
    ("forbidden", RunPodAuthError, ["access denied", "permission", "RUNPOD_API_KEY"]),
    ("not_found", RunPodNotFound, ["resource not found"]),
    ("conflict", RunPodConflict, ["not valid", "RUNNING"]),
    ("bad_request", RunPodValidationError, ["request could not be processed", "fix the request"]),
    ("unprocessable", RunPodValidationError, ["Request validation failed.", "fix the request"]),
    ("unprocessable_fields", RunPodValidationError, ["additional properties 'bogus' not allowed",
                                                     "fix the rejected field(s): bogus"]),
    ("no_capacity", RunPodCapacityError, ["no longer any instances", "runpod_catalog_info", "another GPU type"]),
])
def test_problem_documents_become_typed_errors(runpod_api, load_api_fixture, problem, error_type, words):
    answer = load_api_fixture("problems.json")[problem]
    runpod_api.script("/v2/pods", (answer["status"], answer["body"], answer["headers"]))
    with pytest.raises(RunPodAPIError) as err:
        client_for(runpod_api).create_pod({"name": "x", "image": "y", "gpu": {"id": "z"}})
    assert err.type is error_type
    assert (err.value.status, err.value.title, err.value.detail) == (
        answer["status"], answer["body"]["title"], answer["body"]["detail"])
    assert err.value.errors == answer["body"].get("errors", [])
    for word in words:
        assert word in str(err.value)
    assert "POST %s/pods" % runpod_api.base_url in str(err.value)
    if problem == "unprocessable_fields":
        assert err.value.fields == ["bogus"]


def test_other_http_errors_carry_status_and_body(runpod_api):
    runpod_api.set_pod("p", (500, {"title": "Internal Server Error", "status": 500, "detail": "internal"}))
    with pytest.raises(RunPodServerError) as err:
        client_for(runpod_api, backoff_base=0.01).get_pod("p")
    assert err.value.status == 500
    assert "HTTP 500" in str(err.value) and "internal" in str(err.value)


def test_a_body_that_is_not_a_problem_is_quoted(runpod_api):
    with pytest.raises(RunPodAPIError) as err:
        client_for(runpod_api).request("GET", "teapot")
    assert err.value.status == 418 and "I'm a teapot" in str(err.value)


def test_body_that_is_not_json(runpod_api):
    with pytest.raises(RunPodAPIError, match="not JSON"):
        client_for(runpod_api).request("GET", "notjson")


def test_unexpected_status(runpod_api):
    with pytest.raises(RunPodAPIError) as err:
        client_for(runpod_api).request("GET", "catalog/gpus", expected=(201,))
    assert err.value.status == 200 and "unexpected HTTP 200" in str(err.value)


@TRANSPORTS
def test_connection_refused_is_unreachable_with_hints(closed_port_url, transport):
    with pytest.raises(RunPodUnreachable) as err:
        RunPodClient(api_key="k-must-not-leak", base_url=closed_port_url, timeout=2, transport=transport).get_pod("abc")
    message = str(err.value)
    assert closed_port_url in message
    assert "python -m localcloud start" in message and "make cloud-up" in message
    assert "network" in message
    assert "k-must-not-leak" not in message
    assert err.value.reason and "Connection refused" in err.value.reason


def test_dns_failure_is_unreachable():
    with pytest.raises(RunPodUnreachable) as err:
        RunPodClient(api_key="k", base_url="http://runpod.invalid/v2", timeout=2).get_pod("abc")
    assert "http://runpod.invalid/v2" in str(err.value)


@TRANSPORTS
def test_timeout_is_unreachable(runpod_api, load_fixture, transport):
    runpod_api.set_pod("p", load_fixture("pod_running.json"))
    runpod_api.delay = 2
    with pytest.raises(RunPodUnreachable) as err:
        client_for(runpod_api, timeout=0.3, transport=transport).get_pod("p")
    assert runpod_api.base_url in str(err.value)


def test_empty_key_is_refused():
    with pytest.raises(RunPodAuthError, match="RUNPOD_API_KEY"):
        RunPodClient(api_key="")


def test_repr_hides_key():
    client = RunPodClient(api_key="rpa_SECRET")
    assert "rpa_SECRET" not in repr(client)
    assert client.base_url == DEFAULT_BASE_URL


# -- 429 and 5xx: retries ------------------------------------------------------------------


def _too_many(load_api_fixture, **headers):
    answer = load_api_fixture("problems.json")["too_many_requests"]
    merged = dict(answer["headers"])
    for name, value in headers.items():
        name = name.replace("_", "-")
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return (429, answer["body"], merged)


def _gaps(server):
    return [b - a for a, b in zip(server.times, server.times[1:])]


@TRANSPORTS
def test_429_waits_for_retry_after_then_succeeds(runpod_api, load_fixture, load_api_fixture, transport):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    runpod_api.script("/v2/pods/" + data["id"], _too_many(load_api_fixture, Retry_After="1"))
    started = time.monotonic()
    pod = client_for(runpod_api, transport=transport).get_pod(data["id"])
    assert pod.id == data["id"]
    assert runpod_api.gets(data["id"]) == 2
    # Retry-After: 1 is honoured (plus at most a little jitter)
    assert 1.0 <= _gaps(runpod_api)[0] < 1.8
    assert time.monotonic() - started < 3


def test_429_with_an_http_date(runpod_api, load_api_fixture):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    runpod_api.script("/v2/catalog/gpus", _too_many(load_api_fixture, Retry_After=when))
    client_for(runpod_api).list_gpu_types()
    assert len(runpod_api.requests) == 2
    # an HTTP date has a resolution of one second
    assert 0.9 <= _gaps(runpod_api)[0] < 2.9


def test_429_is_retried_for_a_post_too(runpod_api, load_api_fixture):
    runpod_api.script("/v2/pods", _too_many(load_api_fixture, Retry_After="0"))
    pod = client_for(runpod_api).create_pod({"name": "x", "image": "y", "gpu": {"id": "z"}})
    assert pod.id == "created1"
    assert [r[0] for r in runpod_api.requests] == ["POST", "POST"]


def test_429_without_retry_after_uses_the_ratelimit_header(runpod_api, load_api_fixture):
    runpod_api.script("/v2/catalog/gpus", _too_many(load_api_fixture, Retry_After=None, RateLimit='"minute";r=0;t=1'))
    client_for(runpod_api).list_gpu_types()
    assert 1.0 <= _gaps(runpod_api)[0] < 1.8


def test_429_without_any_hint_backs_off_exponentially(runpod_api, load_api_fixture):
    answer = _too_many(load_api_fixture, Retry_After=None, RateLimit=None)
    runpod_api.script("/v2/catalog/gpus", answer, answer, answer)
    client_for(runpod_api, backoff_base=0.2).list_gpu_types()
    gaps = _gaps(runpod_api)
    assert len(gaps) == 3
    # equal jitter: between half and all of 0.2, 0.4, 0.8 s
    for gap, full in zip(gaps, (0.2, 0.4, 0.8)):
        assert full / 2 - 0.02 <= gap < full + 0.3


def test_429_gives_up_after_max_retries(runpod_api, load_api_fixture):
    answer = _too_many(load_api_fixture, Retry_After="0")
    runpod_api.script("/v2/pods", *[answer] * 10)
    with pytest.raises(RunPodRateLimited) as err:
        client_for(runpod_api, max_retries=2).list_pods()
    assert len(runpod_api.requests) == 3
    message = str(err.value)
    assert "HTTP 429" in message and "rate limit exceeded for the minute window" in message
    assert "after 2 retries" in message and "wait a minute" in message


def test_429_never_waits_past_max_retry_wait(runpod_api, load_api_fixture):
    runpod_api.script("/v2/pods", _too_many(load_api_fixture))  # the spec's example: Retry-After: 12
    started = time.monotonic()
    with pytest.raises(RunPodRateLimited) as err:
        client_for(runpod_api, max_retry_wait=5).list_pods()
    assert time.monotonic() - started < 1
    assert len(runpod_api.requests) == 1
    assert err.value.retry_after == 12.0
    assert "5s allowed" in str(err.value)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_get_is_retried_on_a_gateway_error(runpod_api, load_fixture, status):
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    runpod_api.script("/v2/pods/" + data["id"], (status, b"<html>bad gateway</html>"))
    assert client_for(runpod_api, backoff_base=0.05).get_pod(data["id"]).id == data["id"]
    assert runpod_api.gets(data["id"]) == 2


def test_a_gateway_error_on_a_get_gives_up_clearly(runpod_api):
    runpod_api.script("/v2/pods", *[(503, {"title": "Service Unavailable", "status": 503, "detail": "upstream down"})] * 9)
    with pytest.raises(RunPodServerError) as err:
        client_for(runpod_api, backoff_base=0.01, max_retries=3).list_pods()
    assert len(runpod_api.requests) == 4
    assert "HTTP 503" in str(err.value) and "upstream down" in str(err.value) and "after 3 retries" in str(err.value)


def test_a_post_is_not_retried_on_a_gateway_error(runpod_api):
    runpod_api.script("/v2/pods", (503, {"title": "Service Unavailable", "status": 503, "detail": "upstream down"}))
    with pytest.raises(RunPodServerError):
        client_for(runpod_api, backoff_base=0.01).create_pod({"name": "x", "image": "y", "gpu": {"id": "z"}})
    assert len(runpod_api.requests) == 1


def test_rate_limit_state_is_kept(runpod_api, load_api_fixture):
    runpod_api.script("/v2/catalog/gpus", _too_many(load_api_fixture, Retry_After="0"))
    client = client_for(runpod_api)
    client.list_gpu_types()
    assert client.rate_limit["minute"] == {"r": 0, "t": 12}


# -- the file is usable without Ansible --------------------------------------------------------


def test_the_module_imports_and_works_without_ansible(tmp_path, runpod_api, load_fixture):
    """The gpuops API image has no Ansible: the same file falls back to urllib."""
    data = load_fixture("pod_running.json")
    runpod_api.set_pod(data["id"], data)
    script = tmp_path / "use.py"
    script.write_text(
        "import sys\n"
        "class NoAnsible:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ansible' or name.startswith('ansible.'):\n"
        "            raise ImportError('no ansible here')\n"
        "sys.meta_path.insert(0, NoAnsible())\n"
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('runpod_api', sys.argv[1])\n"
        "mod = sys.modules['runpod_api'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "assert not mod.HAS_ANSIBLE_URLS and mod.default_transport() is mod.urllib_transport\n"
        "pod = mod.RunPodClient(api_key='test-key', base_url=sys.argv[2]).get_pod(sys.argv[3])\n"
        "print(pod.host_key_alias)\n"
    )
    out = subprocess.run([sys.executable, str(script), str(MODULE_FILE), runpod_api.base_url, data["id"]],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == host_key_alias(data)


def test_no_v1_left_in_the_client():
    text = MODULE_FILE.read_text(encoding="utf-8")
    assert "rest.runpod" not in text and DEFAULT_BASE_URL.endswith("/v2")
    assert "costPerHr" not in text and "portMappings" not in text and "desiredStatus" not in text
