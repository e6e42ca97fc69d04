"""State <-> REST v2 translation of the stand-in provider (pure functions)."""

from __future__ import annotations

from fake_runpod import FakeRunPod, spec_errors
from msgpack import ExtType
from tf.types import Unknown
from tfprovider_helpers import PUBLIC_KEY, planned_create

from localcloud.tfprovider.mapping import create_body, fill_unknowns, is_set, state_from_pod, update_body


def test_create_body_is_a_valid_v2_create_request() -> None:
    body = create_body(planned_create(persistent_volume={"size": 20, "path": "/workspace"}, data_center_ids=["EU-RO-1"]))
    assert spec_errors("CreatePodRequest", body) == []
    assert body["gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 1}
    assert body["cloud"] == "SECURE"
    assert body["ports"] == ["22/tcp", "8888/http"]
    assert body["env"] == {"PUBLIC_KEY": PUBLIC_KEY, "FOO": "bar"}
    assert body["mounts"] == {"persistent": {"size": 20, "path": "/workspace"}}
    assert body["dataCenterIds"] == ["EU-RO-1"]
    assert body["globalNetworking"] is False


def test_create_body_leaves_unset_and_unknown_out() -> None:
    body = create_body(planned_create(disk=Unknown, args=ExtType(12, b"")))
    assert "disk" not in body and "args" not in body and "mounts" not in body and "registry" not in body
    assert spec_errors("CreatePodRequest", body) == []


def test_update_body_holds_only_what_changes_and_clears_removed_fields() -> None:
    prior = planned_create(registry="reg-1")
    planned = planned_create(name="renamed", env={"A": "1"}, registry=None)
    body = update_body(prior, planned)
    assert body == {"name": "renamed", "env": {"A": "1"}, "registry": None}
    assert spec_errors("UpdatePodRequest", body) == []
    assert update_body(prior, prior) == {}
    # The same ports in another order are no change.
    assert update_body(prior, {**prior, "ports": ["8888/http", "22/tcp"]}) == {}


def test_state_keeps_configured_spelling_and_create_time_arguments() -> None:
    planned = planned_create(ports=["8888/http", "22/tcp"], start_ssh=True, data_center_ids=["EU-RO-1"])
    pod = FakeRunPod().new_pod({**create_body(planned), "env": {"OTHER": "x"}})
    state = fill_unknowns({**planned, "id": Unknown, "status": Unknown, "cost": Unknown, "data_center_id": Unknown}, pod)
    assert state["id"] == pod["id"] and state["status"] == "PROVISIONING" and state["cost"] == 0.69
    assert state["data_center_id"] == "EU-RO-1"
    again = state_from_pod(pod, state)
    assert again == state  # a refresh right after the apply changes nothing
    assert again["ports"] == ["8888/http", "22/tcp"] != pod["ports"]  # the API's order differs
    assert again["env"] == planned["env"]  # env is not read back (2.x)
    assert again["start_ssh"] is True and again["data_center_ids"] == ["EU-RO-1"]


def test_refresh_reports_drift_of_readable_fields() -> None:
    planned = planned_create()
    pod = FakeRunPod().new_pod(create_body(planned))
    state = fill_unknowns({**planned, "id": Unknown}, pod)
    pod.update(image="other:1", disk=99, status="EXITED", cost=0.0)
    fresh = state_from_pod(pod, state)
    assert fresh["image"] == "other:1" and fresh["disk"] == 99 and fresh["status"] == "EXITED"
    assert fresh["desired_state"] is None  # not configured: stays null


def test_import_reads_everything_the_api_reports() -> None:
    pod = FakeRunPod().new_pod(
        {"name": "p", "image": "i", "gpu": {"id": "NVIDIA A40", "count": 2}, "mounts": {"persistent": {"size": 20, "path": "/w"}}}
    )
    state = state_from_pod(pod)
    assert state["gpu_type_id"] == "NVIDIA A40" and state["gpu_count"] == 2
    assert state["persistent_volume"] == {"size": 20, "path": "/w"}
    assert state["env"] is None and state["template_id"] is None


def test_is_set() -> None:
    assert is_set(0) and is_set("") and not is_set(None) and not is_set(Unknown) and not is_set(ExtType(12, b""))
