"""Mapping between runpod_pod state and RunPod REST v1 bodies (pure functions)."""

from __future__ import annotations

from msgpack import ExtType
from tf.types import Unknown
from tfprovider_helpers import PUBLIC_KEY, planned_create

from localcloud.tfprovider.mapping import (
    create_body,
    env_to_dict,
    env_to_list,
    fill_unknowns,
    is_set,
    is_unknown,
    split_ports,
    state_from_pod,
    update_body,
)

POD = {
    "id": "abc123",
    "name": "gpuops-0",
    "image": "gpuops/pod:bookworm",
    "desiredStatus": "RUNNING",
    "interruptible": False,
    "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
    "costPerHr": "0.69",
    "memoryInGb": 62,
    "vcpuCount": 16.0,
    "containerDiskInGb": 20,
    "volumeInGb": 0,
    "volumeMountPath": "/workspace",
    "ports": ["8888/http", "22/tcp"],
    "env": {"PUBLIC_KEY": PUBLIC_KEY, "FOO": "bar"},
    "locked": False,
    "lastStartedAt": "2025-01-01T00:00:00Z",
    "machine": {"secureCloud": True, "gpuTypeId": "NVIDIA GeForce RTX 4090"},
}


def test_create_body_uses_rest_v1_names_and_shapes() -> None:
    body = create_body(planned_create())
    assert body == {
        "name": "gpuops-0",
        "imageName": "gpuops/pod:bookworm",
        "gpuTypeIds": ["NVIDIA GeForce RTX 4090"],
        "gpuCount": 1,
        "cloudType": "SECURE",
        "interruptible": False,
        "containerDiskInGb": 20,
        "volumeInGb": 0,
        "volumeMountPath": "/workspace",
        "ports": ["22/tcp", "8888/http"],
        "env": {"PUBLIC_KEY": PUBLIC_KEY, "FOO": "bar"},
    }


def test_create_body_spot_all_and_start_command() -> None:
    body = create_body(planned_create(type="SPOT", cloud_type="ALL", docker_args="bash -c 'sleep infinity'"))
    assert body["interruptible"] is True
    assert "cloudType" not in body  # REST v1 has no ALL: RunPod chooses
    assert body["dockerStartCmd"] == ["bash", "-c", "sleep infinity"]


def test_create_body_leaves_out_unset_and_unknown_arguments() -> None:
    body = create_body(planned_create(volume_mount_path=Unknown, template_id=None, name=ExtType(12, b"\x01")))
    assert "volumeMountPath" not in body and "templateId" not in body and "name" not in body


def test_update_body_sends_every_updatable_argument_only() -> None:
    body = update_body(planned_create(name="gpuops-9"))
    assert body == {
        "name": "gpuops-9",
        "imageName": "gpuops/pod:bookworm",
        "containerDiskInGb": 20,
        "volumeInGb": 0,
        "volumeMountPath": "/workspace",
        "ports": ["22/tcp", "8888/http"],
        "env": {"PUBLIC_KEY": PUBLIC_KEY, "FOO": "bar"},
    }


def test_helpers() -> None:
    assert split_ports(" 22/tcp, 8888/http ,") == ["22/tcp", "8888/http"]
    assert split_ports(None) == []
    assert env_to_dict(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    assert env_to_list({"B": "2", "A": "1"}) == ["A=1", "B=2"]
    assert is_unknown(Unknown) and is_unknown(ExtType(12, b"")) and not is_unknown(None)
    assert not is_set(None) and not is_set(Unknown) and is_set("") and is_set(0)


def test_fill_unknowns_takes_api_values_and_keeps_planned_ones() -> None:
    planned = planned_create()
    state = fill_unknowns(planned, POD)
    assert state["id"] == "abc123"
    assert state["status"] == "RUNNING"
    assert state["cost_per_hr"] == 0.69  # the API's "0.69" string is a number
    assert state["memory_in_gb"] == 62 and state["vcpu_count"] == 16
    assert state["locked"] is False
    assert state["created_at"] == "2025-01-01T00:00:00Z"
    # Known planned values stay exactly as planned (Terraform insists), whatever the API's order.
    assert state["ports"] == "22/tcp,8888/http"
    assert state["env"] == planned["env"]
    assert state["docker_entrypoint"] is None and state["network_volume_id"] is None
    assert Unknown not in state.values()


def test_refresh_is_stable_when_api_spells_the_same_values_differently() -> None:
    prior = fill_unknowns(planned_create(), POD)
    assert state_from_pod(POD, prior) == prior


def test_refresh_reports_real_drift() -> None:
    prior = fill_unknowns(planned_create(), POD)
    drifted = dict(POD, name="renamed", ports=["22/tcp"], env={"FOO": "changed"}, interruptible=True)
    state = state_from_pod(drifted, prior)
    assert state["name"] == "renamed"
    assert state["ports"] == "22/tcp"
    assert state["env"] == ["FOO=changed"]
    assert state["type"] == "SPOT"


def test_refresh_keeps_what_the_api_does_not_echo() -> None:
    prior = fill_unknowns(planned_create(cloud_type="ALL", docker_args="sleep 1"), dict(POD, dockerStartCmd=["x"]))
    state = state_from_pod(dict(POD, dockerStartCmd=["x"], createdAt="2030-01-01"), prior)
    assert state["cloud_type"] == "ALL"
    assert state["docker_args"] == "sleep 1"
    assert state["created_at"] == "2025-01-01T00:00:00Z"  # stable once stored
    assert state["docker_start_cmd"] is None  # not computed: stays null when it was null


def test_import_derives_everything_from_the_api() -> None:
    state = state_from_pod(dict(POD, dockerStartCmd=["sleep", "1"]))
    assert state["cloud_type"] == "SECURE"
    assert state["gpu_type_id"] == "NVIDIA GeForce RTX 4090"
    assert state["gpu_count"] == 1
    assert state["type"] == "ON_DEMAND"
    assert state["ports"] == "8888/http,22/tcp"
    assert state["env"] == ["FOO=bar", "PUBLIC_KEY=" + PUBLIC_KEY]
    assert state["docker_start_cmd"] == ["sleep", "1"]
    assert state["docker_args"] == "sleep 1"
