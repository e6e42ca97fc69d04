"""Fault injection under /_localcloud (memory backend: the records' side of it)."""

from __future__ import annotations

from typing import Any

from localcloud.clock import ManualClock


def test_interrupt_exits_the_pod_and_hides_its_addresses(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod(interruptible=True)
    clock.advance(3)
    assert client.get(f"/v1/pods/{pod['id']}").json()["publicIp"] == "127.0.0.1"
    resp = client.post(f"/_localcloud/pods/{pod['id']}/interrupt")
    assert resp.status_code == 200
    assert resp.json()["desired_status"] == "EXITED"
    seen = client.get(f"/v1/pods/{pod['id']}").json()
    assert seen["desiredStatus"] == "EXITED"
    assert seen["publicIp"] is None
    assert seen["portMappings"] is None
    assert seen["lastStatusChange"].startswith("Interrupted")


def test_interrupting_a_stopped_pod_is_400(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    client.post(f"/v1/pods/{pod['id']}/stop")
    resp = client.post(f"/_localcloud/pods/{pod['id']}/interrupt")
    assert resp.status_code == 400
    assert "not running" in resp.json()["error"]


def test_interrupted_pod_can_be_started_again(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod(interruptible=True)
    client.post(f"/_localcloud/pods/{pod['id']}/interrupt")
    assert client.post(f"/v1/pods/{pod['id']}/start").json()["desiredStatus"] == "RUNNING"
    clock.advance(3)
    assert client.get(f"/v1/pods/{pod['id']}").json()["portMappings"] is not None


def test_network_cut_and_restore_are_recorded_and_idempotent(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    internals = f"/_localcloud/pods/{pod['id']}"
    assert client.get(internals).json()["network_cut"] is False
    assert client.post(f"{internals}/network/cut").json()["network_cut"] is True
    assert client.post(f"{internals}/network/cut").json()["network_cut"] is True
    assert client.get(internals).json()["network_cut"] is True
    # A cut does not change what RunPod's API shows.
    assert client.get(f"/v1/pods/{pod['id']}").json()["desiredStatus"] == "RUNNING"
    assert client.post(f"{internals}/network/restore").json()["network_cut"] is False
    assert client.post(f"{internals}/network/restore").json()["network_cut"] is False


def test_reset_clears_a_network_cut(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    client.post(f"/_localcloud/pods/{pod['id']}/network/cut")
    client.post(f"/v1/pods/{pod['id']}/reset")
    assert client.get(f"/_localcloud/pods/{pod['id']}").json()["network_cut"] is False


def test_gpu_types_are_listed(client: Any) -> None:
    types = {g["id"]: g for g in client.get("/_localcloud/gpu-types").json()}
    assert "NVIDIA GeForce RTX 4090" in types
    assert types["NVIDIA H100 80GB HBM3"]["displayName"] == "H100 SXM"
