"""Bearer auth on every /v2 and /_localcloud route; /v1 is gone; the API key file."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MakeClient = Callable[..., Any]

ROUTES = [
    ("GET", "/v2/pods"),
    ("POST", "/v2/pods"),
    ("GET", "/v2/pods/abc"),
    ("PATCH", "/v2/pods/abc"),
    ("DELETE", "/v2/pods/abc"),
    ("POST", "/v2/pods/abc/action"),
    ("GET", "/v2/catalog/gpus"),
    ("GET", "/v2/account/ssh-keys"),
    ("POST", "/_localcloud/pods/abc/interrupt"),
    ("POST", "/_localcloud/faults/rate-limit"),
    ("GET", "/v2/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_key_is_401_problem(make_client: MakeClient, method: str, path: str) -> None:
    resp = make_client(authorized=False).request(method, path)
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["title"] == "Unauthorized" and body["status"] == 401
    assert body["detail"].startswith("missing bearer token")


@pytest.mark.parametrize(
    "header", ["Bearer wrong-key", "Basic dXNlcjpwYXNz", "Bearer", "bearer  "], ids=["wrong", "basic", "empty", "blank"]
)
def test_wrong_key_is_401(make_client: MakeClient, header: str) -> None:
    resp = make_client(authorized=False).get("/v2/pods", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json() == {"title": "Unauthorized", "status": 401, "detail": "invalid bearer token: the API key is wrong"}


def test_right_key_is_accepted_case_insensitive_scheme(make_client: MakeClient, state_dir: Path) -> None:
    client = make_client(authorized=False)
    key = (state_dir / "api_key").read_text().strip()
    assert client.get("/v2/pods", headers={"Authorization": f"bearer {key}"}).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize("authorized", [True, False])
def test_v1_is_gone(make_client: MakeClient, method: str, authorized: bool) -> None:
    resp = make_client(authorized=authorized).request(method, "/v1/pods")
    assert resp.status_code == 410
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["title"] == "Gone"
    assert "v1 was retired" in body["detail"] and "/v2" in body["detail"]
    assert make_client().get("/v1/pods/abc/start").status_code == 410


def test_healthz_needs_no_auth(make_client: MakeClient) -> None:
    resp = make_client(authorized=False).get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert resp.json()["backend"] == "memory"
    assert resp.json()["api"] == "v2"


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
