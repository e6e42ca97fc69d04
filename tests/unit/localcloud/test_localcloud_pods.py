"""The pod lifecycle through RunPod's REST v1 paths (memory backend)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from localcloud.clock import ManualClock

READY_DELAY = 3.0


def test_create_returns_201_and_a_runpod_pod(client: Any, pod_body: dict[str, Any]) -> None:
    resp = client.post("/v1/pods", json=pod_body)
    assert resp.status_code == 201
    pod = resp.json()
    assert re.fullmatch(r"[a-z0-9]{14}", pod["id"])
    assert re.fullmatch(r"[a-z0-9]{12}", pod["machineId"])
    assert pod["name"] == "trainer-0"
    assert pod["desiredStatus"] == "RUNNING"
    assert pod["imageName"] == pod["image"] == pod_body["imageName"]
    assert pod["env"] == pod_body["env"]
    assert pod["ports"] == ["22/tcp", "8888/http"]
    assert pod["gpuCount"] == 2
    assert pod["gpu"]["id"] == "NVIDIA GeForce RTX 4090"
    assert pod["gpu"]["count"] == 2
    assert pod["gpu"]["displayName"] == "RTX 4090"
    assert pod["machine"]["gpuTypeId"] == "NVIDIA GeForce RTX 4090"
    assert pod["machine"]["secureCloud"] is True
    assert pod["containerDiskInGb"] == 20
    assert pod["volumeInGb"] == 10
    assert pod["volumeMountPath"] == "/workspace"
    assert pod["interruptible"] is False
    assert pod["memoryInGb"] > 0
    assert pod["vcpuCount"] > 0
    assert pod["createdAt"].endswith("Z")
    assert pod["lastStartedAt"].endswith("Z")
    assert pod["lastStatusChange"].startswith("Rented by User")
    # Still initialising: RunPod answers null, and so must the local cloud.
    assert pod["publicIp"] is None
    assert pod["portMappings"] is None


def test_create_applies_runpod_defaults(client: Any) -> None:
    pod = client.post("/v1/pods", json={"imageName": "img", "gpuTypeIds": ["NVIDIA A40"]}).json()
    assert pod["name"] == "my pod"
    assert pod["gpuCount"] == 1
    assert pod["ports"] == ["8888/http", "22/tcp"]
    assert pod["containerDiskInGb"] == 50
    assert pod["volumeInGb"] == 20
    assert pod["env"] == {}
    assert pod["machine"]["dataCenterId"] == "LOCAL-1"


def test_first_known_gpu_type_is_rented_and_ports_string_accepted(client: Any, pod_body: dict[str, Any]) -> None:
    body = {**pod_body, "gpuTypeIds": ["NVIDIA L40S", "NVIDIA A40"], "ports": "8888/http,22/tcp,2222/tcp"}
    pod = client.post("/v1/pods", json=body).json()
    assert pod["gpu"]["id"] == "NVIDIA L40S"
    assert pod["ports"] == ["8888/http", "22/tcp", "2222/tcp"]


def test_list_and_get(client: Any, create_pod: Any) -> None:
    first, second = create_pod(name="a"), create_pod(name="b")
    listed = client.get("/v1/pods").json()
    assert [p["id"] for p in listed] == [first["id"], second["id"]]
    got = client.get(f"/v1/pods/{second['id']}").json()
    assert got["name"] == "b"
    assert got == listed[1]


def test_list_filters(client: Any, create_pod: Any) -> None:
    a = create_pod(name="a")
    b = create_pod(name="b", gpuTypeIds=["NVIDIA A40"], gpuCount=1)
    client.post(f"/v1/pods/{b['id']}/stop")
    ids = lambda **params: [p["id"] for p in client.get("/v1/pods", params=params).json()]  # noqa: E731
    assert ids(name="a") == [a["id"]]
    assert ids(id=b["id"]) == [b["id"]]
    assert ids(desiredStatus="EXITED") == [b["id"]]
    assert ids(desiredStatus="RUNNING") == [a["id"]]
    assert ids(gpuTypeId=["NVIDIA A40", "NVIDIA L4"]) == [b["id"]]
    assert ids(computeType="CPU") == []
    assert ids(imageName="nope") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/pods/{id}"),
        ("PATCH", "/v1/pods/{id}"),
        ("POST", "/v1/pods/{id}/update"),
        ("DELETE", "/v1/pods/{id}"),
        ("POST", "/v1/pods/{id}/stop"),
        ("POST", "/v1/pods/{id}/start"),
        ("POST", "/v1/pods/{id}/restart"),
        ("POST", "/v1/pods/{id}/reset"),
        ("GET", "/_localcloud/pods/{id}"),
        ("POST", "/_localcloud/pods/{id}/interrupt"),
        ("POST", "/_localcloud/pods/{id}/network/cut"),
        ("POST", "/_localcloud/pods/{id}/network/restore"),
    ],
)
def test_unknown_pod_is_404(client: Any, method: str, path: str) -> None:
    kwargs = {"json": {"name": "x"}} if method in ("PATCH", "POST") else {}
    resp = client.request(method, path.format(id="zzzzzzzzzzzzzz"), **kwargs)
    assert resp.status_code == 404
    assert resp.json() == {
        "error": "pod zzzzzzzzzzzzzz not found",
        "message": "pod zzzzzzzzzzzzzz not found",
        "status": 404,
    }


def test_delete_answers_204_then_the_pod_is_gone(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    resp = client.delete(f"/v1/pods/{pod['id']}")
    assert resp.status_code == 204
    assert resp.content == b""
    assert client.get(f"/v1/pods/{pod['id']}").status_code == 404
    assert client.delete(f"/v1/pods/{pod['id']}").status_code == 404
    assert client.get("/v1/pods").json() == []


def test_stop_and_start(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    mapping = client.get(f"/v1/pods/{pod['id']}").json()["portMappings"]
    assert mapping is not None

    stopped = client.post(f"/v1/pods/{pod['id']}/stop")
    assert stopped.status_code == 200
    assert stopped.json()["desiredStatus"] == "EXITED"
    assert stopped.json()["publicIp"] is None
    assert stopped.json()["portMappings"] is None
    assert client.post(f"/v1/pods/{pod['id']}/stop").json()["desiredStatus"] == "EXITED"

    clock.advance(60)
    started = client.post(f"/v1/pods/{pod['id']}/start").json()
    assert started["desiredStatus"] == "RUNNING"
    assert started["portMappings"] is None  # initialising again
    assert started["lastStartedAt"] > pod["lastStartedAt"]
    clock.advance(READY_DELAY)
    assert client.get(f"/v1/pods/{pod['id']}").json()["portMappings"] == mapping


def test_start_of_running_pod_changes_nothing(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(10)
    again = client.post(f"/v1/pods/{pod['id']}/start").json()
    assert again["lastStartedAt"] == pod["lastStartedAt"]
    assert again["publicIp"] == "127.0.0.1"


def test_patch_name_only_does_not_reset(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    resp = client.patch(f"/v1/pods/{pod['id']}", json={"name": "renamed"})
    assert resp.status_code == 200
    updated = resp.json()
    assert updated["name"] == "renamed"
    assert updated["lastStartedAt"] == pod["lastStartedAt"]
    assert updated["portMappings"] is not None


@pytest.mark.parametrize(
    "change",
    [
        {"imageName": "runpod/base:0.6.2"},
        {"env": {"PUBLIC_KEY": "ssh-ed25519 AAAA other", "NEW": "1"}},
        {"ports": ["22/tcp", "9000/tcp"]},
        {"containerDiskInGb": 99},
    ],
    ids=["image", "env", "ports", "disk"],
)
def test_patch_that_needs_a_new_container_resets_the_pod(
    client: Any, create_pod: Any, clock: ManualClock, change: dict[str, Any]
) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    updated = client.patch(f"/v1/pods/{pod['id']}", json=change).json()
    for key, value in change.items():
        assert updated[key] == value
    assert updated["lastStartedAt"] > pod["lastStartedAt"]
    assert updated["lastStatusChange"].startswith("Reset by User")
    assert updated["portMappings"] is None
    clock.advance(READY_DELAY)
    mappings = client.get(f"/v1/pods/{pod['id']}").json()["portMappings"]
    assert set(mappings) == {p.split("/")[0] for p in updated["ports"] if p.endswith("/tcp")}


def test_patch_with_same_values_does_not_reset(client: Any, create_pod: Any, pod_body: dict[str, Any]) -> None:
    pod = create_pod()
    updated = client.patch(f"/v1/pods/{pod['id']}", json={"env": pod_body["env"], "ports": pod_body["ports"]}).json()
    assert updated["lastStartedAt"] == pod["lastStartedAt"]


def test_post_update_is_a_synonym_of_patch(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    assert client.post(f"/v1/pods/{pod['id']}/update", json={"name": "via-post"}).json()["name"] == "via-post"


def test_locked_pod_cannot_be_stopped_or_reset(client: Any, create_pod: Any) -> None:
    pod = create_pod(locked=True)
    assert client.post(f"/v1/pods/{pod['id']}/stop").status_code == 400
    assert "locked" in client.post(f"/v1/pods/{pod['id']}/reset").json()["error"]
    assert client.patch(f"/v1/pods/{pod['id']}", json={"env": {}}).status_code == 400
    unlocked = client.patch(f"/v1/pods/{pod['id']}", json={"locked": False, "env": {}})
    assert unlocked.status_code == 200
    assert client.post(f"/v1/pods/{pod['id']}/stop").json()["desiredStatus"] == "EXITED"


def test_restart_and_reset(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(5)
    restarted = client.post(f"/v1/pods/{pod['id']}/restart").json()
    assert restarted["desiredStatus"] == "RUNNING"
    assert restarted["lastStartedAt"] > pod["lastStartedAt"]
    clock.advance(5)
    reset = client.post(f"/v1/pods/{pod['id']}/reset").json()
    assert reset["lastStatusChange"].startswith("Reset by User")
    assert reset["lastStartedAt"] > restarted["lastStartedAt"]


def test_pods_get_distinct_host_ports(client: Any, create_pod: Any, clock: ManualClock) -> None:
    for _ in range(20):
        create_pod(ports=["22/tcp", "8080/tcp"])
    clock.advance(READY_DELAY)
    ports = [port for p in client.get("/v1/pods").json() for port in p["portMappings"].values()]
    assert len(ports) == 40
    assert len(set(ports)) == 40


def test_http_ports_are_not_in_port_mappings(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod(ports=["8888/http", "22/tcp"])
    clock.advance(READY_DELAY)
    assert set(client.get(f"/v1/pods/{pod['id']}").json()["portMappings"]) == {"22"}
