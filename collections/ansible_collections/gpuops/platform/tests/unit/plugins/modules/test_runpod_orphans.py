# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of runpod_orphans against a real HTTP server on 127.0.0.1 (tests/unit/conftest.py).

The server answers with pods derived from the recorded v2 answers (../inventory/fixtures): only id, name and the
``env`` tag change. The deployment ids are the tests' own.
"""

from __future__ import annotations

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpuops.platform.plugins.modules import runpod_orphans
from ansible_collections.gpuops.platform.tests.unit.plugins.modules.module_harness import ExitJson, FailJson, patch_module_exits

OURS = "k3v9q2x7m1c8b4zd"
THEIRS = "p0w8e6r4t2y1u3i5"


@pytest.fixture(autouse=True)
def _exits(monkeypatch):
    patch_module_exits(monkeypatch)


def run(**args):
    with patch_module_args(args):
        try:
            runpod_orphans.main()
        except ExitJson as done:
            return False, done.args[0]
        except FailJson as failed:
            return True, failed.args[0]
    raise AssertionError("the module neither exited nor failed")


@pytest.fixture
def pods(runpod_api, load_fixture):
    """Our known pod, our orphan (a second gpuops-1), another deployment's gpuops-0 and an untagged gpuops-2."""
    def derive(fixture, pod_id, name, deployment=None):
        data = load_fixture(fixture)
        env = dict(data.get("env") or {})
        if deployment:
            env["GPUOPS_DEPLOYMENT"] = deployment
        data = dict(data, id=pod_id, name=name, env=env)
        runpod_api.set_pod(pod_id, data)
        return data

    return {
        "known": derive("pod_running.json", "known0", "gpuops-0", OURS),
        "orphan": derive("pod_running.json", "orphan1", "gpuops-1", OURS),
        "theirs": derive("pod_running.json", "theirs0", "gpuops-0", THEIRS),
        "untagged": derive("pod_exited.json", "hand2", "gpuops-2"),
    }


def common(runpod_api, **args):
    params = {"base_url": runpod_api.base_url, "api_key": "test-key", "deployment_id": OURS, "known_ids": ["known0"],
              "name_prefix": "gpuops"}
    params.update(args)
    return params


def test_lists_orphans_and_changes_nothing(runpod_api, pods):
    failed, result = run(**common(runpod_api))
    assert not failed, result
    assert result["changed"] is False and result["terminated"] == []
    assert [p["id"] for p in result["orphans"]] == ["orphan1"]
    orphan = result["orphans"][0]
    reply = pods["orphan"]
    assert (orphan["name"], orphan["status"], orphan["cost_per_hr"], orphan["deployment"]) == (
        reply["name"], reply["status"], reply["cost"], OURS)
    assert result["cost_per_hr"] == reply["cost"]
    assert [(p["id"], p["deployment"]) for p in result["others"]] == [("theirs0", THEIRS), ("hand2", None)]
    assert [m for m, _path, _auth in runpod_api.requests] == ["GET"]
    assert set(runpod_api.pods) == {"known0", "orphan1", "theirs0", "hand2"}


def test_purge_terminates_only_our_orphans_and_is_idempotent(runpod_api, pods):
    failed, result = run(**common(runpod_api, purge=True))
    assert not failed, result
    assert result["changed"] is True and result["terminated"] == ["orphan1"]
    assert ("DELETE", "/v2/pods/orphan1") in [(m, p) for m, p, _auth in runpod_api.requests]
    assert [p for m, p, _auth in runpod_api.requests if m != "GET"] == ["/v2/pods/orphan1"]
    assert set(runpod_api.pods) == {"known0", "theirs0", "hand2"}
    failed, again = run(**common(runpod_api, purge=True))
    assert not failed and again["changed"] is False and again["terminated"] == [] and again["orphans"] == []


def test_purge_after_the_state_is_gone_takes_every_pod_of_ours_and_no_other(runpod_api, pods):
    failed, result = run(**common(runpod_api, purge=True, known_ids=[]))
    assert not failed, result
    assert sorted(result["terminated"]) == ["known0", "orphan1"]
    assert set(runpod_api.pods) == {"theirs0", "hand2"}


def test_purge_in_check_mode_terminates_nothing(runpod_api, pods):
    failed, result = run(_ansible_check_mode=True, **common(runpod_api, purge=True))
    assert not failed and result["changed"] is True and result["terminated"] == []
    assert [p["id"] for p in result["orphans"]] == ["orphan1"]
    assert [m for m, _path, _auth in runpod_api.requests] == ["GET"]


def test_a_pod_that_cannot_be_terminated_fails_naming_it(runpod_api, pods, load_api_fixture):
    forbidden = load_api_fixture("problems.json")["forbidden"]
    runpod_api.script("/v2/pods/orphan1", (forbidden["status"], forbidden["body"]))
    failed, result = run(**common(runpod_api, purge=True))
    assert failed
    assert "orphan1" in result["msg"] and "gpuops-1" in result["msg"] and "RunPod console" in result["msg"]
    assert result["terminated"] == []


def test_a_pod_gone_meanwhile_is_not_an_error(runpod_api, pods, load_api_fixture):
    not_found = load_api_fixture("problems.json")["not_found"]
    runpod_api.script("/v2/pods/orphan1", (not_found["status"], not_found["body"]))
    failed, result = run(**common(runpod_api, purge=True))
    assert not failed and result["terminated"] == []


@pytest.mark.parametrize("bad", ["", "NOT-AN-ID", "short"])
def test_an_invalid_deployment_id_is_refused_before_any_request(runpod_api, pods, bad):
    failed, result = run(**common(runpod_api, deployment_id=bad, purge=True))
    assert failed and "deployment_id" in result["msg"] and "Nothing was changed" in result["msg"]
    assert runpod_api.requests == []


def test_the_api_refusing_the_key_fails_without_the_key(runpod_api, pods):
    failed, result = run(**common(runpod_api, api_key="wrong-key"))
    assert failed and "rejected the API key" in result["msg"] and "wrong-key" not in result["msg"]
