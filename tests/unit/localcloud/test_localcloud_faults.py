"""Fault injection under /_localcloud, and the rate limits (memory backend)."""

from __future__ import annotations

from typing import Any

from localcloud.clock import ManualClock
from localcloud.ratelimit import RateLimiter

READY_DELAY = 3.0


def action(client: Any, pod_id: str, name: str) -> Any:
    return client.post(f"/v2/pods/{pod_id}/action", json={"action": name})


def test_interrupt_exits_the_pod(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    assert client.get(f"/v2/pods/{pod['id']}").json()["ssh"]["direct"] is not None
    resp = client.post(f"/_localcloud/pods/{pod['id']}/interrupt")
    assert resp.status_code == 200
    assert resp.json()["state"] == "EXITED"
    seen = client.get(f"/v2/pods/{pod['id']}").json()
    assert seen["status"] == "EXITED"
    assert seen["ssh"]["direct"] is None and seen["runtime"] is None and seen["cost"] == 0
    assert client.post(f"/_localcloud/pods/{pod['id']}/interrupt").status_code == 400
    assert action(client, pod["id"], "start").json()["status"] == "STARTING"


def test_error_fault_and_recovery_by_start(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    resp = client.post(f"/_localcloud/pods/{pod['id']}/error", json={"detail": "GPU fell off the bus"})
    assert resp.json()["state"] == "ERROR"
    seen = client.get(f"/v2/pods/{pod['id']}").json()
    assert seen["status"] == "ERROR"
    assert seen["actions"] == ["start", "terminate"]
    assert "GPU fell off the bus" in client.get(f"/v2/pods/{pod['id']}/logs").text
    assert action(client, pod["id"], "restart").status_code == 409
    assert action(client, pod["id"], "start").json()["status"] == "STARTING"


def test_stuck_provisioning_per_pod_and_for_the_next_creates(client: Any, create_pod: Any, clock: ManualClock) -> None:
    assert client.post("/_localcloud/faults/provisioning", json={"count": 1}).json()["provisioning"] == {"count": 1}
    stuck, normal = create_pod(name="stuck"), create_pod(name="normal")
    clock.advance(60)
    assert client.get(f"/v2/pods/{stuck['id']}").json()["status"] == "PROVISIONING"
    assert client.get(f"/v2/pods/{stuck['id']}").json()["ssh"]["direct"] is None
    assert client.get(f"/v2/pods/{normal['id']}").json()["status"] == "RUNNING"
    client.post(f"/_localcloud/pods/{normal['id']}/provisioning", json={"stuck": True})
    assert client.get(f"/v2/pods/{normal['id']}").json()["status"] == "PROVISIONING"
    client.post(f"/_localcloud/pods/{stuck['id']}/provisioning", json={"stuck": False})
    assert client.get(f"/v2/pods/{stuck['id']}").json()["status"] == "PROVISIONING"
    clock.advance(READY_DELAY / 2)
    assert client.get(f"/v2/pods/{stuck['id']}").json()["status"] == "STARTING"
    clock.advance(READY_DELAY / 2)
    assert client.get(f"/v2/pods/{stuck['id']}").json()["status"] == "RUNNING"


def test_capacity_fault_fails_the_next_create_like_runpod(client: Any, pod_body: dict[str, Any]) -> None:
    client.post("/_localcloud/faults/capacity", json={"count": 1})
    failed = client.post("/v2/pods", json=pod_body)
    assert failed.status_code == 400
    assert failed.json()["detail"].startswith("There are no longer any instances available")
    assert client.post("/v2/pods", json=pod_body).status_code == 201


def test_stock_none_fails_creates_and_shows_in_the_catalog(client: Any, pod_body: dict[str, Any]) -> None:
    table = client.put("/_localcloud/stock", json={"gpus": {"NVIDIA GeForce RTX 4090": "NONE"}}).json()["gpus"]
    assert table["NVIDIA GeForce RTX 4090"] == "NONE" and table["NVIDIA A40"] == "HIGH"
    assert client.post("/v2/pods", json=pod_body).status_code == 400
    gpu = client.get("/v2/catalog/gpus/NVIDIA GeForce RTX 4090", params={"include": "AVAILABILITY", "product": "POD"})
    assert gpu.json()["availability"] == "NONE"
    assert "dataCenters" not in gpu.json()
    assert client.get("/v2/catalog/gpus/NVIDIA GeForce RTX 4090").json().get("availability") is None
    assert client.put("/_localcloud/stock", json={"gpus": {"nope": "LOW"}}).status_code == 400
    assert client.put("/_localcloud/stock", json={"gpus": {"NVIDIA A40": "PLENTY"}}).status_code == 422
    assert client.delete("/_localcloud/faults").status_code == 204
    assert client.post("/v2/pods", json=pod_body).status_code == 201


def test_rate_limit_fault_answers_429_with_retry_after(client: Any) -> None:
    client.post("/_localcloud/faults/rate-limit", json={"count": 2, "retryAfter": 3, "method": "POST"})
    assert client.get("/v2/pods").status_code == 200  # only POSTs are hit
    for _ in range(2):
        resp = client.post("/v2/pods", json={})
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "3"
        assert resp.headers["RateLimit-Policy"]
        assert resp.json()["title"] == "Too Many Requests"
    assert client.post("/v2/pods", json={}).status_code == 422
    assert client.get("/_localcloud/faults").json()["rateLimit"]["count"] == 0


def test_forbidden_fault(client: Any) -> None:
    client.post("/_localcloud/faults/forbidden", json={"count": 1, "path": "/v2/catalog"})
    assert client.get("/v2/pods").status_code == 200
    assert client.get("/v2/catalog/gpus").status_code == 403
    assert client.get("/v2/catalog/gpus").status_code == 200


def test_rate_limit_headers_on_authenticated_answers(client: Any, make_client: Any) -> None:
    ok = client.get("/v2/pods")
    assert ok.headers["RateLimit-Policy"] == '"minute";q=6000;w=60, "hour";q=100000;w=3600, "day";q=1000000;w=86400'
    assert ok.headers["RateLimit"].startswith('"minute";r=')
    assert client.get("/v2/pods/nope").headers["RateLimit"]
    assert "RateLimit" not in make_client(authorized=False).get("/v2/pods").headers


def test_rate_limiter_counts_windows_and_refuses_over_quota() -> None:
    now = [120.0]
    limiter = RateLimiter((2, 10, 100), now=lambda: now[0])
    first = limiter.hit()
    assert first.allowed and first.state.startswith('"minute";r=1;t=60, "hour";r=9;')
    assert limiter.hit().allowed
    refused = limiter.hit()
    assert not refused.allowed and refused.retry_after == 60
    now[0] += 60
    assert limiter.hit().allowed


def test_network_cut_and_restore_are_recorded_and_idempotent(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    internals = f"/_localcloud/pods/{pod['id']}"
    assert client.get(internals).json()["network_cut"] is False
    assert client.post(f"{internals}/network/cut").json()["network_cut"] is True
    assert client.post(f"{internals}/network/cut").json()["network_cut"] is True
    # A cut does not change what RunPod's API shows.
    assert client.get(f"/v2/pods/{pod['id']}").json()["status"] == "PROVISIONING"
    assert client.post(f"{internals}/network/restore").json()["network_cut"] is False
    assert client.post(f"{internals}/network/restore").json()["network_cut"] is False


def test_restart_clears_a_network_cut(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    clock.advance(READY_DELAY)
    client.post(f"/_localcloud/pods/{pod['id']}/network/cut")
    action(client, pod["id"], "restart")
    assert client.get(f"/_localcloud/pods/{pod['id']}").json()["network_cut"] is False


def test_bad_fault_body_is_422(client: Any) -> None:
    resp = client.post("/_localcloud/faults/rate-limit", json={"count": -1})
    assert resp.status_code == 422
    assert client.post("/_localcloud/faults/capacity", json={"bogus": 1}).status_code == 422
