"""publicIp/portMappings stay null until the pod has run for the ready delay (clock moved, never slept)."""

from __future__ import annotations

from typing import Any

from localcloud.clock import ManualClock


def test_addresses_appear_only_after_the_delay(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    url = f"/v1/pods/{pod['id']}"
    clock.advance(2.9)
    assert client.get(url).json()["publicIp"] is None
    assert client.get(url).json()["portMappings"] is None
    clock.advance(0.1)
    ready = client.get(url).json()
    assert ready["publicIp"] == "127.0.0.1"
    assert set(ready["portMappings"]) == {"22"}
    assert 20000 <= ready["portMappings"]["22"] < 32000


def test_list_shows_the_same_readiness(client: Any, create_pod: Any, clock: ManualClock) -> None:
    early = create_pod(name="early")
    clock.advance(2)
    create_pod(name="late")
    clock.advance(1)
    by_name = {p["name"]: p for p in client.get("/v1/pods").json()}
    assert by_name["early"]["portMappings"] is not None
    assert by_name["late"]["portMappings"] is None
    assert by_name["early"]["id"] == early["id"]


def test_zero_delay_means_ready_at_once(make_client: Any, pod_body: dict[str, Any]) -> None:
    client = make_client(delay=0)
    pod = client.post("/v1/pods", json=pod_body).json()
    assert pod["publicIp"] == "127.0.0.1"
    assert pod["portMappings"] is not None


def test_delay_counts_from_the_last_start(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(100)
    client.post(f"/v1/pods/{pod['id']}/stop")
    client.post(f"/v1/pods/{pod['id']}/start")
    assert client.get(f"/v1/pods/{pod['id']}").json()["portMappings"] is None
    clock.advance(3)
    assert client.get(f"/v1/pods/{pod['id']}").json()["portMappings"] is not None
