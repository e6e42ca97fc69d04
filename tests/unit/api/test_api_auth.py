"""Every route needs the bearer token, except the few public ones; CORS only for the configured origins."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpuops_api.app import PUBLIC_PATHS, create_app
from gpuops_api.config import ConfigError, load_settings

from .conftest import Env, TestClient, write_config

EXPECTED_PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/docs/static"}


def iter_routes(routes: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, including those of included routers."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
            contexts = route.effective_route_contexts()
            yield from iter_routes(contexts)
        elif hasattr(route, "path"):
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method not in ("HEAD", "OPTIONS"):
                    yield method, route.path


def _route_table() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(write_config(Path(tmp))))
        return sorted(set(iter_routes(app.routes)))


ROUTES = _route_table()
PROTECTED = [(method, path) for method, path in ROUTES if path not in EXPECTED_PUBLIC]


def concrete(path: str) -> str:
    """A URL for a route pattern: path parameters filled with plausible values."""
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "7" if m.group(1).endswith("id") else "gpuopsapirec-0", path)


def test_the_route_table_is_complete() -> None:
    # The introspection sees every route that the OpenAPI document lists, and the public ones.
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(write_config(Path(tmp))))
        documented = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    assert documented <= set(ROUTES)
    assert EXPECTED_PUBLIC <= {path for _, path in ROUTES}
    assert PUBLIC_PATHS == EXPECTED_PUBLIC
    assert len(PROTECTED) >= 12


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest.mark.parametrize("token", [None, "wrong-token-but-long-enough", ""], ids=["no-token", "wrong", "empty"])
def test_protected_route_refuses_requests_without_the_token(env: Env, anonymous: TestClient, method: str,
                                                            path: str, token: str | None) -> None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = anonymous.request(method, concrete(path), headers=headers,
                                 json={"script": "#!/bin/sh\n", "name": "x"} if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"]
    # Refused before any upstream was asked.
    assert not env.slurm.requests and not env.cloud.requests and not env.prometheus.requests and not env.ssh.reads


@pytest.mark.parametrize("header", ["Basic cm9vdDpyb290", "Bearer", "bearer  ", "Token abc"])
def test_malformed_authorization_headers_are_refused(anonymous: TestClient, header: str) -> None:
    assert anonymous.get("/api/v1/info", headers={"Authorization": header}).status_code == 401


def test_a_token_that_only_shares_a_prefix_is_refused(env: Env, anonymous: TestClient) -> None:
    for token in (env.token[:-1], env.token + "x", env.token.upper() if env.token.upper() != env.token else "X"):
        assert anonymous.get("/api/v1/info", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# /docs/static is a directory of files (test_api_hardening.py loads each one the page names).
@pytest.mark.parametrize("path", sorted(EXPECTED_PUBLIC - {"/docs/oauth2-redirect", "/docs/static"}))
def test_public_routes_answer_without_a_token(anonymous: TestClient, path: str) -> None:
    assert anonymous.get(path).status_code == 200


def test_the_token_opens_every_protected_get_route(client: TestClient) -> None:
    for method, path in PROTECTED:
        if method == "GET":
            assert client.get(concrete(path)).status_code != 401, path


def test_cors_allows_the_web_origin_only(anonymous: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    allowed = anonymous.options("/api/v1/pods", headers={"Origin": "http://127.0.0.1:8080", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = anonymous.options("/api/v1/pods", headers={"Origin": "http://evil.example", **preflight})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = anonymous.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the API token file"),
    ("", "is empty"),
    ("short", "at least 16 characters"),
])
def test_an_unusable_token_file_stops_the_start(tmp_path: Path, content: str | None, message: str) -> None:
    settings = load_settings(write_config(tmp_path))
    if content is None:
        settings.token_file.unlink()
    else:
        settings.token_file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        create_app(settings)
