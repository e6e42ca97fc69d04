"""The pod lifecycle through RunPod's REST v2 paths (memory backend)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from localcloud.clock import ManualClock

READY_DELAY = 3.0


def action(client: Any, pod_id: str, name: str) -> Any:
    return client.post(f"/v2/pods/{pod_id}/action", json={"action": name})


def test_create_returns_201_and_a_v2_pod(client: Any, pod_body: dict[str, Any]) -> None:
    resp = client.post("/v2/pods", json=pod_body)
    assert resp.status_code == 201
    assert resp.headers["content-type"] == "application/json"
    pod = resp.json()
    assert re.fullmatch(r"[a-z0-9]{14}", pod["id"])
    assert pod["name"] == "trainer-0"
    assert pod["status"] == "PROVISIONING"
    assert pod["actions"] == ["stop", "terminate"]
    assert pod["image"] == pod_body["image"]
    assert pod["env"] == pod_body["env"]
    assert pod["ports"] == ["22/tcp", "8888/http"]
    assert pod["gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 2}
    assert pod["cloud"] == "SECURE"
    assert pod["disk"] == 20
    assert pod["mounts"] == {"persistent": {"size": 10, "path": "/workspace"}}
    assert pod["dataCenterId"] == "US-TX-3"
    assert pod["cudaVersion"] == "12.8"
    assert pod["registry"] is None and pod["template"] is None
    assert pod["locked"] is False
    assert pod["globalNetworking"] == {"enabled": False}
    assert pod["createdAt"].endswith("Z")
    # Provisioning: no start yet, no SSH, no runtime.
    assert pod["startedAt"] is None
    assert pod["ssh"] == {"proxy": None, "direct": None}
    assert pod["runtime"] is None
    assert "cpu" not in pod and "cluster" not in pod


def test_create_applies_runpod_defaults(client: Any) -> None:
    pod = client.post("/v2/pods", json={"name": "d", "image": "img", "gpu": {"id": "NVIDIA A40"}}).json()
    assert pod["gpu"] == {"id": "NVIDIA A40", "count": 1}
    assert pod["cloud"] == "SECURE"
    assert pod["ports"] == []
    assert pod["disk"] == 50
    assert pod["args"] == ""
    assert pod["env"] == {}
    assert pod["mounts"] == {}
    assert pod["globalNetworking"] == {"enabled": False}


def test_status_goes_provisioning_starting_running(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    url = f"/v2/pods/{pod['id']}"
    clock.advance(READY_DELAY / 2)
    starting = client.get(url).json()
    assert starting["status"] == "STARTING"
    assert starting["startedAt"] == pod["createdAt"]
    assert starting["ssh"]["direct"] is None
    clock.advance(READY_DELAY / 2)
    running = client.get(url).json()
    assert running["status"] == "RUNNING"
    assert running["actions"] == ["stop", "restart", "terminate"]
    port = running["ssh"]["direct"]["port"]
    assert running["ssh"]["direct"] == {
        "host": "127.0.0.1",
        "port": port,
        "username": "root",
        "command": f"ssh root@127.0.0.1 -p {port}",
    }
    assert running["ssh"]["proxy"] is None
    assert running["runtime"]["uptime"] == 3
    assert running["runtime"]["ports"] == [
        {"private": 22, "public": port, "type": "tcp", "ip": "127.0.0.1"},
        {"private": 8888, "public": None, "type": "http", "ip": None},
    ]
    assert len(running["runtime"]["gpus"]) == 2


def test_list_and_get(client: Any, create_pod: Any) -> None:
    first, second = create_pod(name="a"), create_pod(name="b")
    listed = client.get("/v2/pods").json()
    assert list(listed) == ["pods"]
    assert [p["id"] for p in listed["pods"]] == [first["id"], second["id"]]
    got = client.get(f"/v2/pods/{second['id']}").json()
    assert got == listed["pods"][1]
    assert client.get("/v2/pods", params={"includeClusterPods": "true"}).json() == listed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/pods/{id}"),
        ("PATCH", "/v2/pods/{id}"),
        ("DELETE", "/v2/pods/{id}"),
        ("POST", "/v2/pods/{id}/action"),
        ("GET", "/v2/pods/{id}/logs"),
        ("GET", "/_localcloud/pods/{id}"),
        ("POST", "/_localcloud/pods/{id}/interrupt"),
        ("POST", "/_localcloud/pods/{id}/error"),
        ("POST", "/_localcloud/pods/{id}/provisioning"),
        ("POST", "/_localcloud/pods/{id}/network/cut"),
        ("POST", "/_localcloud/pods/{id}/network/restore"),
    ],
)
def test_unknown_pod_is_404_problem(client: Any, method: str, path: str) -> None:
    kwargs = {"json": {"action": "stop"} if path.endswith("action") else {}} if method in ("PATCH", "POST") else {}
    resp = client.request(method, path.format(id="zzzzzzzzzzzzzz"), **kwargs)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json() == {"title": "Not Found", "status": 404, "detail": "pod zzzzzzzzzzzzzz not found"}


@pytest.mark.parametrize("how", ["delete", "terminate"])
def test_terminate_answers_204_then_the_pod_is_gone(client: Any, create_pod: Any, how: str) -> None:
    pod = create_pod()
    resp = client.delete(f"/v2/pods/{pod['id']}") if how == "delete" else action(client, pod["id"], "terminate")
    assert resp.status_code == 204
    assert resp.content == b""
    assert client.get(f"/v2/pods/{pod['id']}").status_code == 404
    assert client.delete(f"/v2/pods/{pod['id']}").status_code == 404
    assert client.get("/v2/pods").json() == {"pods": []}


def test_stop_and_start(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    running = client.get(f"/v2/pods/{pod['id']}").json()
    assert running["cost"] == 1.38

    stopped = action(client, pod["id"], "stop")
    assert stopped.status_code == 200
    body = stopped.json()
    assert body["status"] == "EXITED"
    assert body["actions"] == ["start", "terminate"]
    assert body["cost"] == 0
    assert body["ssh"]["direct"] is None and body["runtime"] is None
    assert action(client, pod["id"], "stop").status_code == 409

    clock.advance(60)
    started = action(client, pod["id"], "start").json()
    assert started["status"] == "STARTING"  # a start does not provision again
    assert started["startedAt"] > running["startedAt"]
    assert started["ssh"]["direct"] is None
    clock.advance(READY_DELAY)
    again = client.get(f"/v2/pods/{pod['id']}").json()
    assert again["status"] == "RUNNING"
    assert again["ssh"]["direct"]["port"] == running["ssh"]["direct"]["port"]


def test_restart_changes_started_at(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    before = client.get(f"/v2/pods/{pod['id']}").json()
    clock.advance(5)
    restarted = action(client, pod["id"], "restart").json()
    assert restarted["status"] == "STARTING"
    assert restarted["startedAt"] > before["startedAt"]
    assert restarted["createdAt"] == before["createdAt"]


@pytest.mark.parametrize(
    ("setup", "name", "allowed"),
    [
        ([], "start", "stop, terminate"),  # PROVISIONING
        (["wait"], "start", "stop, restart, terminate"),  # RUNNING
        (["wait", "stop"], "restart", "start, terminate"),  # EXITED
        (["wait", "stop"], "stop", "start, terminate"),
    ],
)
def test_actions_not_valid_now_are_409(
    client: Any, create_pod: Any, clock: ManualClock, setup: list[str], name: str, allowed: str
) -> None:
    pod = create_pod()
    for step in setup:
        if step == "wait":
            clock.advance(READY_DELAY)
        else:
            assert action(client, pod["id"], step).status_code == 200
    resp = action(client, pod["id"], name)
    assert resp.status_code == 409
    assert resp.json()["title"] == "Conflict"
    assert resp.json()["detail"].endswith(f"valid now: {allowed}")


def test_provisioning_pod_can_be_stopped(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    assert action(client, pod["id"], "stop").json()["status"] == "EXITED"


def test_patch_name_only_keeps_the_container(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    resp = client.patch(f"/v2/pods/{pod['id']}", json={"name": "renamed"})
    assert resp.status_code == 200
    updated = resp.json()
    assert updated["name"] == "renamed"
    assert updated["status"] == "RUNNING"
    assert updated["startedAt"] == pod["createdAt"]


@pytest.mark.parametrize(
    "change",
    [
        {"image": "runpod/base:0.6.2"},
        {"env": {"PUBLIC_KEY": "ssh-ed25519 AAAA other", "NEW": "1"}},
        {"ports": ["22/tcp", "9000/tcp"]},
        {"disk": 99},
        {"args": "sleep infinity"},
        {"mounts": {"persistent": {"size": 30, "path": "/data"}}},
    ],
    ids=["image", "env", "ports", "disk", "args", "mounts"],
)
def test_patch_that_needs_a_new_container_restarts_the_pod(
    client: Any, create_pod: Any, clock: ManualClock, change: dict[str, Any]
) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    updated = client.patch(f"/v2/pods/{pod['id']}", json=change).json()
    for key, value in change.items():
        assert updated[key] == value
    assert updated["status"] == "STARTING"
    assert updated["startedAt"] > pod["createdAt"]
    clock.advance(READY_DELAY)
    runtime = client.get(f"/v2/pods/{pod['id']}").json()["runtime"]
    assert {p["private"] for p in runtime["ports"]} == {int(p.split("/")[0]) for p in updated["ports"]}


def test_patch_with_same_values_keeps_the_container(client: Any, create_pod: Any, pod_body: dict[str, Any]) -> None:
    pod = create_pod()
    updated = client.patch(f"/v2/pods/{pod['id']}", json={"env": pod_body["env"], "ports": pod_body["ports"]}).json()
    assert updated["status"] == "PROVISIONING"


def test_patch_global_networking_takes_effect_at_next_start(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    patched = client.patch(f"/v2/pods/{pod['id']}", json={"globalNetworking": True}).json()
    assert patched["globalNetworking"] == {"enabled": False}
    restarted = action(client, pod["id"], "restart").json()
    assert restarted["globalNetworking"]["enabled"] is True
    assert restarted["globalNetworking"]["internalDns"] == f"{pod['id']}.runpod.internal"


def test_locked_pod_cannot_be_stopped_or_changed(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    locked = client.patch(f"/v2/pods/{pod['id']}", json={"locked": True}).json()
    assert locked["locked"] is True
    assert locked["actions"] == ["restart", "terminate"]
    resp = action(client, pod["id"], "stop")
    assert resp.status_code == 409
    assert "locked" in resp.json()["detail"]
    assert client.patch(f"/v2/pods/{pod['id']}", json={"env": {}}).status_code == 400
    assert client.patch(f"/v2/pods/{pod['id']}", json={"locked": False, "env": {}}).status_code == 200
    assert action(client, pod["id"], "stop").json()["status"] == "EXITED"


def test_pods_get_distinct_host_ports(client: Any, create_pod: Any, clock: ManualClock) -> None:
    for _ in range(20):
        create_pod(ports=["22/tcp", "8080/tcp"])
    clock.advance(READY_DELAY)
    ports = [p["public"] for pod in client.get("/v2/pods").json()["pods"] for p in pod["runtime"]["ports"]]
    assert len(ports) == 40
    assert len(set(ports)) == 40


def test_cost_is_catalog_price_per_gpu_times_count(client: Any, create_pod: Any) -> None:
    secure = create_pod(gpu={"id": "NVIDIA A100 80GB PCIe", "count": 4})
    community = create_pod(gpu={"id": "NVIDIA A100 80GB PCIe", "count": 4}, cloud="COMMUNITY")
    gpu = client.get("/v2/catalog/gpus/NVIDIA A100 80GB PCIe").json()
    assert secure["cost"] == round(gpu["price"]["secure"] * 4, 4)
    assert community["cost"] == round(gpu["price"]["community"] * 4, 4)
    assert community["cloud"] == "COMMUNITY"


def test_start_ssh_injects_registered_keys_into_the_container_only(
    client: Any, pod_body: dict[str, Any], state_dir: Any
) -> None:
    keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA one@example", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB two"]
    assert client.put("/v2/account/ssh-keys", json={"keys": keys}).json() == {"keys": keys}
    assert client.get("/v2/account/ssh-keys").json() == {"keys": keys}
    body = {**pod_body, "env": {"A": "1"}, "startSsh": True}
    pod = client.post("/v2/pods", json=body).json()
    assert pod["env"] == {"A": "1"}
    from localcloud.store import StateStore

    record = StateStore(state_dir / "state.json", "memory").load()[pod["id"]]
    assert record.container_env() == {"A": "1", "PUBLIC_KEY": "\n".join(keys)}
    # A PUBLIC_KEY in the request wins; without startSsh nothing is injected.
    own = client.post("/v2/pods", json={**pod_body, "startSsh": True}).json()
    assert StateStore(state_dir / "state.json", "memory").load()[own["id"]].container_env() == pod_body["env"]
    plain = client.post("/v2/pods", json={**pod_body, "env": {}}).json()
    assert StateStore(state_dir / "state.json", "memory").load()[plain["id"]].container_env() == {}


def test_bad_ssh_keys_are_422(client: Any) -> None:
    resp = client.put("/v2/account/ssh-keys", json={"keys": ["not a key"]})
    assert resp.status_code == 422
    assert resp.json()["errors"][0].startswith("$.keys[0]: 'not a key' does not match pattern")


def test_logs_are_server_sent_events(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(10)
    action(client, pod["id"], "stop")
    resp = client.get(f"/v2/pods/{pod['id']}/logs", params={"source": "system"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["cache-control"] == "no-cache"
    blocks = resp.text.strip().split("\n\n")
    assert len(blocks) == 2
    assert blocks[0].startswith("id: 2025-01-01T00:00:00.000Z/000000000001\ndata: {")
    assert '"source": "system"' in blocks[1] and "stopped by user" in blocks[1]
    assert len(client.get(f"/v2/pods/{pod['id']}/logs", params={"tail": 1}).text.strip().split("\n\n")) == 1
    later = client.get(f"/v2/pods/{pod['id']}/logs", headers={"Last-Event-ID": "2025-01-01T00:00:05.000Z/000000000001"})
    assert "created" not in later.text and "stopped" in later.text
    assert client.get(f"/v2/pods/{pod['id']}/logs", params={"tail": 6000}).status_code == 422
