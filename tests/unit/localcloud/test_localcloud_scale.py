"""The memory backend carries 1000 pods (for clients' scale tests)."""

from __future__ import annotations

from typing import Any

from localcloud.clock import ManualClock

N = 1000


def test_thousand_pods(make_client: Any, clock: ManualClock) -> None:
    client = make_client()
    body = {"image": "runpod/base", "gpu": {"id": "NVIDIA RTX A4000"}, "ports": ["22/tcp"]}
    ids = [client.post("/v2/pods", json={**body, "name": f"pod-{i}"}).json()["id"] for i in range(N)]
    assert len(set(ids)) == N
    clock.advance(3)

    pods = client.get("/v2/pods").json()["pods"]
    assert len(pods) == N
    ports = {p["ssh"]["direct"]["port"] for p in pods}
    assert len(ports) == N

    restarted = make_client()
    assert len(restarted.get("/v2/pods").json()["pods"]) == N
    for pod_id in ids[: N // 2]:
        assert restarted.delete(f"/v2/pods/{pod_id}").status_code == 204
    assert sorted(p["id"] for p in restarted.get("/v2/pods").json()["pods"]) == sorted(ids[N // 2 :])
