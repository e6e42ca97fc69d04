"""Bad inputs of the README's security table on the cloud API (the local cloud, as strict as RunPod): each is
refused, and the cloud's pods are exactly as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

MakeClient = Callable[..., Any]


def _pods(client: Any) -> list[dict[str, Any]]:
    return sorted(client.get("/v2/pods").json()["pods"], key=lambda pod: pod["id"])


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic dXNlcjpwYXNz", "Bearer"],
                         ids=["none", "wrong", "basic", "empty"])
def test_a_create_or_terminate_without_the_key_changes_nothing(make_client: MakeClient, client: Any,
                                                                create_pod: Any, pod_body: dict[str, Any],
                                                                header: str | None) -> None:
    pod = create_pod()
    before = _pods(client)
    stranger = make_client(authorized=False)
    headers = {"Authorization": header} if header is not None else {}
    for method, path, body in [("POST", "/v2/pods", {**pod_body, "name": "intruder"}),
                               ("POST", f"/v2/pods/{pod['id']}/action", {"action": "terminate"}),
                               ("DELETE", f"/v2/pods/{pod['id']}", None),
                               ("PATCH", f"/v2/pods/{pod['id']}", {"image": "evil/image:latest"})]:
        response = stranger.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert _pods(client) == before


@pytest.mark.parametrize(("body", "error"), [
    ({"action": "reset"}, "$.action: value must be one of 'start', 'stop', 'restart', 'terminate'"),
    ({"action": "stop", "force": True}, "$: additional properties 'force' not allowed"),
    ({"action": ["stop"]}, "$.action: expected string, but got array"),
])
def test_a_bad_action_leaves_the_pod_as_it_was(client: Any, create_pod: Any, body: dict[str, Any],
                                               error: str) -> None:
    pod = create_pod()
    before = _pods(client)
    response = client.post(f"/v2/pods/{pod['id']}/action", json=body)
    assert response.status_code == 422, response.text
    assert error in response.json()["errors"][0]
    assert _pods(client) == before


@pytest.mark.parametrize("pod_id", ["..", "abc%2F..%2F..", "x" * 300, "' OR '1'='1"])
def test_an_unknown_or_hostile_pod_id_is_404_and_touches_no_pod(client: Any, create_pod: Any, pod_id: str) -> None:
    create_pod()
    before = _pods(client)
    for method, path, body in [("GET", f"/v2/pods/{pod_id}", None), ("DELETE", f"/v2/pods/{pod_id}", None),
                               ("POST", f"/v2/pods/{pod_id}/action", {"action": "terminate"})]:
        response = client.request(method, path, json=body)
        assert response.status_code in (404, 405), (method, path, response.text)
    assert _pods(client) == before
