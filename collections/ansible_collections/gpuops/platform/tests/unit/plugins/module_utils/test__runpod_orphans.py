# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How a deployment's orphans are told from everything else (module_utils/_runpod_api.py).

Pods are derived from the recorded v2 answers (../inventory/fixtures): only their id, name, status and ``env``
(a string map in RunPod's v2 ``Pod``) change. The deployment ids are the tests' own.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    Pod,
    RunPodAPIError,
    find_orphans,
    named_like,
    pod_deployment,
    valid_deployment_id,
)

OURS = "k3v9q2x7m1c8b4zd"
THEIRS = "p0w8e6r4t2y1u3i5"
ROOT = pathlib.Path(__file__).resolve().parents[4]


def pod(load_fixture, pod_id, name, deployment=None, status=None, fixture="pod_running.json", **env):
    data = load_fixture(fixture)
    data = dict(data, id=pod_id, name=name, env=dict(data.get("env") or {}, **env))
    if deployment is not None:
        data["env"]["GPUOPS_DEPLOYMENT"] = deployment
    if status is not None:
        data["status"] = status
    return Pod.from_api(data)


def test_the_tag_is_read_from_the_pods_env(load_fixture):
    assert pod_deployment(pod(load_fixture, "a1", "gpuops-0", OURS)) == OURS
    assert pod_deployment(pod(load_fixture, "a1", "gpuops-0", OURS).raw) == OURS
    # the recording itself: made before the tag, so gpuops' tag is not there
    assert pod_deployment(load_fixture("pod_running.json")) is None
    # RunPod may leave env out or null on a pod: no tag, no error
    assert pod_deployment({"id": "x", "env": None}) is None
    assert pod_deployment({"id": "x"}) is None


@pytest.mark.parametrize("value", ["", "UPPERCASE1234", "short", "has-hyphen-123", "a" * 65, "abc def 12", None, 12345678])
def test_a_malformed_tag_is_no_tag(load_fixture, value):
    data = dict(load_fixture("pod_running.json"), env={"GPUOPS_DEPLOYMENT": value})
    assert pod_deployment(data) is None
    assert not valid_deployment_id(value)


def test_names_of_the_deployment_are_prefix_dash_index():
    assert named_like({"name": "gpuops-0"}, "gpuops")
    assert named_like({"name": "gpuops-12"}, "gpuops")
    assert not named_like({"name": "gpuops-ci-0"}, "gpuops")
    assert not named_like({"name": "gpuops"}, "gpuops")
    assert not named_like({"name": "gpuops-0x"}, "gpuops")
    assert not named_like({"name": "xgpuops-0"}, "gpuops")
    # a prefix is text, never a pattern
    assert not named_like({"name": "gpuopsX-0"}, "gpuops.")
    assert not named_like({"name": None}, "gpuops")


def test_orphans_are_tagged_with_our_id_and_unknown_to_the_state(load_fixture):
    known = pod(load_fixture, "known0", "gpuops-0", OURS)
    crashed = pod(load_fixture, "crash1", "gpuops-1", OURS)  # a second gpuops-1 from a run that crashed
    stopped = pod(load_fixture, "stop2", "gpuops-2", OURS, fixture="pod_exited.json")
    theirs = pod(load_fixture, "theirs0", "gpuops-0", THEIRS)  # same names, another checkout
    untagged = pod(load_fixture, "hand3", "gpuops-3")  # made by hand in the console
    gone = pod(load_fixture, "gone4", "gpuops-4", OURS, status="TERMINATED")
    found = find_orphans([untagged, theirs, stopped, crashed, known, gone], OURS, ["known0"], "gpuops")
    assert [p.id for p in found.orphans] == ["crash1", "stop2"]
    assert [p.id for p in found.others] == ["theirs0", "hand3"]


def test_our_tag_on_a_foreign_name_is_not_taken_without_the_name(load_fixture):
    renamed = pod(load_fixture, "ren5", "someone-else", OURS)
    assert find_orphans([renamed], OURS, [], "gpuops").orphans == ()
    assert find_orphans([renamed], OURS, [], "gpuops").others == ()
    # without a prefix the tag alone decides
    assert [p.id for p in find_orphans([renamed], OURS, [], None).orphans] == ["ren5"]


def test_another_deployments_pods_are_never_orphans_even_without_a_state(load_fixture):
    theirs = [pod(load_fixture, "t%d" % i, "gpuops-%d" % i, THEIRS) for i in range(3)]
    untagged = [pod(load_fixture, "u%d" % i, "gpuops-%d" % i) for i in range(3)]
    found = find_orphans(theirs + untagged, OURS, [], "gpuops")
    assert found.orphans == ()
    assert len(found.others) == 6
    assert find_orphans(theirs + untagged, OURS, [], None) == find_orphans([], OURS, [], None)


def test_after_a_teardown_every_tagged_pod_is_an_orphan(load_fixture):
    pods = [pod(load_fixture, "p%d" % i, "gpuops-%d" % i, OURS) for i in range(3)]
    assert [p.id for p in find_orphans(pods, OURS, [], "gpuops").orphans] == ["p0", "p1", "p2"]
    assert find_orphans(pods, OURS, ["p0", "p1", "p2"], "gpuops").orphans == ()


@pytest.mark.parametrize("bad", ["", "NOPE", None, "gpuops"])
def test_an_invalid_deployment_id_is_refused(load_fixture, bad):
    with pytest.raises(RunPodAPIError, match="invalid deployment id"):
        find_orphans([pod(load_fixture, "a", "gpuops-0")], bad, [], "gpuops")


def test_terraform_sets_the_same_variable_name():
    """terraform/runpod tags the pods under the name the client reads (one name, two languages)."""
    main_tf = (ROOT / "roles" / "provision" / "files" / "terraform" / "runpod" / "main.tf").read_text(encoding="utf-8")
    assert re.search(r"\{\s*GPUOPS_DEPLOYMENT\s*=\s*var\.deployment_id\s*\}", main_tf)
