"""Bearer auth on every /v1 and /_localcloud route; the API key file."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MakeClient = Callable[..., Any]

ROUTES = [
    ("GET", "/v1/pods"),
    ("POST", "/v1/pods"),
    ("GET", "/v1/pods/abc"),
    ("PATCH", "/v1/pods/abc"),
    ("DELETE", "/v1/pods/abc"),
    ("POST", "/v1/pods/abc/stop"),
    ("POST", "/v1/pods/abc/start"),
    ("POST", "/_localcloud/pods/abc/interrupt"),
    ("POST", "/_localcloud/pods/abc/network/cut"),
    ("POST", "/_localcloud/pods/abc/network/restore"),
    ("GET", "/v1/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_key_is_401_with_error_body(make_client: MakeClient, method: str, path: str) -> None:
    resp = make_client(authorized=False).request(method, path)
    assert resp.status_code == 401
    body = resp.json()
    assert body["status"] == 401
    assert "Authorization" in body["error"]
    assert body["message"] == body["error"]


@pytest.mark.parametrize(
    "header", ["Bearer wrong-key", "Basic dXNlcjpwYXNz", "Bearer", "bearer  "], ids=["wrong", "basic", "empty", "blank"]
)
def test_wrong_key_is_401(make_client: MakeClient, header: str) -> None:
    resp = make_client(authorized=False).get("/v1/pods", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json() == {
        "error": "Unauthorized: invalid API key",
        "message": "Unauthorized: invalid API key",
        "status": 401,
    }


def test_right_key_is_accepted_case_insensitive_scheme(make_client: MakeClient, state_dir: Path) -> None:
    client = make_client(authorized=False)
    key = (state_dir / "api_key").read_text().strip()
    assert client.get("/v1/pods", headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_healthz_needs_no_auth(make_client: MakeClient) -> None:
    resp = make_client(authorized=False).get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert resp.json()["backend"] == "memory"


def test_api_key_file_is_private_and_kept_across_restarts(make_client: MakeClient, state_dir: Path) -> None:
    make_client()
    key_file = state_dir / "api_key"
    first = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.strip()) >= 32
    make_client()
    assert key_file.read_text() == first


def test_each_state_dir_gets_its_own_key(make_client: MakeClient, tmp_path: Path) -> None:
    make_client(state=tmp_path / "a")
    make_client(state=tmp_path / "b")
    assert (tmp_path / "a" / "api_key").read_text() != (tmp_path / "b" / "api_key").read_text()


def test_unknown_route_is_404_json(client: Any) -> None:
    resp = client.get("/v1/no-such-route")
    assert resp.status_code == 404
    assert resp.json()["status"] == 404
    assert "/v1/no-such-route" in resp.json()["error"]
    outside = client.get("/nothing-here")
    assert outside.status_code == 404
    assert outside.json()["status"] == 404
