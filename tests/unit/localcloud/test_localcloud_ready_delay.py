"""ssh.direct and runtime stay null until the pod has run for the ready delay (clock moved, never slept)."""

from __future__ import annotations

from typing import Any

from localcloud.clock import ManualClock


def test_ssh_appears_only_after_the_delay(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    url = f"/v2/pods/{pod['id']}"
    clock.advance(2.9)
    assert client.get(url).json()["ssh"]["direct"] is None
    assert client.get(url).json()["runtime"] is None
    clock.advance(0.1)
    ready = client.get(url).json()
    assert ready["status"] == "RUNNING"
    assert ready["ssh"]["direct"]["host"] == "127.0.0.1"
    assert 20000 <= ready["ssh"]["direct"]["port"] < 32000


def test_list_shows_the_same_readiness(client: Any, create_pod: Any, clock: ManualClock) -> None:
    early = create_pod(name="early")
    clock.advance(2)
    create_pod(name="late")
    clock.advance(1)
    by_name = {p["name"]: p for p in client.get("/v2/pods").json()["pods"]}
    assert by_name["early"]["ssh"]["direct"] is not None
    assert by_name["late"]["ssh"]["direct"] is None
    assert by_name["early"]["id"] == early["id"]


def test_zero_delay_means_running_at_once(make_client: Any, pod_body: dict[str, Any]) -> None:
    client = make_client(delay=0)
    pod = client.post("/v2/pods", json=pod_body).json()
    assert pod["status"] == "RUNNING"
    assert pod["ssh"]["direct"] is not None


def test_no_ssh_direct_without_22_tcp(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod(ports=["8888/http"])
    clock.advance(3)
    seen = client.get(f"/v2/pods/{pod['id']}").json()
    assert seen["status"] == "RUNNING"
    assert seen["ssh"]["direct"] is None


def test_delay_counts_from_the_last_start(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(100)
    client.post(f"/v2/pods/{pod['id']}/action", json={"action": "stop"})
    client.post(f"/v2/pods/{pod['id']}/action", json={"action": "start"})
    assert client.get(f"/v2/pods/{pod['id']}").json()["ssh"]["direct"] is None
    clock.advance(3)
    assert client.get(f"/v2/pods/{pod['id']}").json()["ssh"]["direct"] is not None
