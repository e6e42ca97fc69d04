"""Issue 12: the token is rotated without a restart, /readyz tells anonymous callers booleans only, a foreign
Host header is refused (DNS rebinding), and Swagger UI loads nothing from a CDN."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpuops_api.config import ConfigError, load_settings

from tests import locks

from .conftest import Env, TestClient, make_env, write_config


def rotate(path: Path, token: str | None = None) -> str:
    """Replace the token file the way the app role does: a new file renamed over the old one (0600)."""
    token = token if token is not None else secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(token + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Rotation without a restart -------------------------------------------------------------------------------

@pytest.fixture
def metrics_env(tmp_path: Path) -> Env:
    (tmp_path / "api_metrics_token").write_text(secrets.token_urlsafe(32) + "\n")
    return make_env(tmp_path, metrics_token_file=str(tmp_path / "api_metrics_token"))


def test_a_rotated_token_works_at_once_and_the_old_one_stops(env: Env, anonymous: TestClient) -> None:
    old = env.token
    assert anonymous.get("/api/v1/info", headers=bearer(old)).status_code == 200
    new = rotate(env.settings.token_file)
    # The same running app (no restart): the old token is refused, the new one opens every route.
    refused = anonymous.get("/api/v1/info", headers=bearer(old))
    assert refused.status_code == 401
    assert "rotated" in refused.json()["detail"]
    assert anonymous.get("/api/v1/info", headers=bearer(new)).status_code == 200
    assert anonymous.get("/metrics", headers=bearer(old)).status_code == 401
    assert anonymous.get("/metrics", headers=bearer(new)).status_code == 200
    # A second rotation too (the file's inode changes each time).
    newer = rotate(env.settings.token_file)
    assert anonymous.get("/api/v1/info", headers=bearer(new)).status_code == 401
    assert anonymous.get("/api/v1/info", headers=bearer(newer)).status_code == 200


def test_a_token_rewritten_in_place_with_the_same_length_is_seen(env: Env, anonymous: TestClient) -> None:
    path = env.settings.token_file
    new = "".join("A" if c != "A" else "B" for c in env.token)  # same length: only the content differs
    stat = path.stat()
    path.write_text(new + "\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert anonymous.get("/api/v1/info", headers=bearer(env.token)).status_code == 401
    assert anonymous.get("/api/v1/info", headers=bearer(new)).status_code == 200


@pytest.mark.parametrize("damage", ["remove", "empty", "short"])
def test_an_unusable_token_file_lets_nobody_in(env: Env, anonymous: TestClient, damage: str) -> None:
    path = env.settings.token_file
    if damage == "remove":
        path.unlink()
    else:
        rotate(path, "" if damage == "empty" else "short")
    for token in (env.token, "short", ""):
        response = anonymous.get("/api/v1/info", headers=bearer(token))
        assert response.status_code in (401, 503), response.text
        assert str(path) not in response.text and str(path.parent) not in response.text
    assert anonymous.get("/api/v1/info", headers=bearer(env.token)).status_code == 503
    assert not env.cloud.requests and not env.slurm.requests
    # Fixed by a rotation: the new token works, still without a restart.
    new = rotate(path)
    assert anonymous.get("/api/v1/info", headers=bearer(new)).status_code == 200


def test_the_metrics_token_rotates_separately(metrics_env: Env) -> None:
    path = metrics_env.settings.metrics_token_file
    assert path is not None
    old_metrics = path.read_text().strip()
    with TestClient(metrics_env.app(), raise_server_exceptions=False) as anonymous:
        assert anonymous.get("/metrics", headers=bearer(old_metrics)).status_code == 200
        # The metrics-only token never opens the data routes.
        assert anonymous.get("/api/v1/info", headers=bearer(old_metrics)).status_code == 401
        new_metrics = rotate(path)
        assert anonymous.get("/metrics", headers=bearer(old_metrics)).status_code == 401
        assert anonymous.get("/metrics", headers=bearer(new_metrics)).status_code == 200
        assert anonymous.get("/api/v1/info", headers=bearer(new_metrics)).status_code == 401
        # The API token is untouched by the metrics rotation.
        assert anonymous.get("/api/v1/info", headers=metrics_env.auth).status_code == 200


def test_an_unusable_metrics_token_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "api_metrics_token").write_text("short\n")
    settings = load_settings(write_config(tmp_path, metrics_token_file=str(tmp_path / "api_metrics_token")))
    from gpuops_api.app import create_app
    with pytest.raises(ConfigError, match="at least 16 characters"):
        create_app(settings)


# --- /readyz --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("down", [None, "cloud", "slurm", "prometheus"])
def test_readyz_without_a_token_says_booleans_only(env: Env, anonymous: TestClient, down: str | None) -> None:
    if down is not None:
        getattr(env, down).down = True
    response = anonymous.get("/readyz")
    assert response.status_code == (200 if down is None else 503)
    body = response.json()
    assert set(body) == {"ready", "upstreams"}
    assert set(body["upstreams"]) >= {"prometheus", "slurmrestd", "cloud"}
    for check in body["upstreams"].values():
        assert set(check) == {"ok"} and isinstance(check["ok"], bool)
    # Nothing that names a file, an address or an upstream's error.
    assert not re.search(r"/|127\.0\.0\.1|http|refused|token", response.text), response.text


def test_readyz_with_the_token_keeps_the_details(env: Env, client: TestClient) -> None:
    env.cloud.down = True
    response = client.get("/readyz")
    assert response.status_code == 503
    cloud = response.json()["upstreams"]["cloud"]
    assert cloud["ok"] is False and "127.0.0.1:8765" in cloud["detail"]
    assert all(check["detail"] for check in response.json()["upstreams"].values())


def test_readyz_with_a_wrong_token_is_refused(env: Env, anonymous: TestClient) -> None:
    asked = [len(upstream.requests) for upstream in (env.slurm, env.prometheus, env.cloud)]
    response = anonymous.get("/readyz", headers=bearer("wrong-token-but-long-enough"))
    assert response.status_code == 401
    assert "detail" not in json.dumps(response.json().get("upstreams", {}))
    # Refused before any upstream is asked.
    assert [len(upstream.requests) for upstream in (env.slurm, env.prometheus, env.cloud)] == asked


# --- Trusted Host header (DNS rebinding) ----------------------------------------------------------------------

@pytest.fixture
def loopback_env(tmp_path: Path) -> Env:
    """The app as the role deploys it by default: no extra trusted host."""
    return make_env(tmp_path, trusted_hosts=[])


@pytest.fixture
def loopback(loopback_env: Env) -> Iterator[TestClient]:
    with TestClient(loopback_env.app(), base_url="http://127.0.0.1:8081", raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("host", ["127.0.0.1:8081", "127.0.0.1", "localhost:8081", "localhost"])
def test_loopback_host_headers_are_accepted(loopback_env: Env, loopback: TestClient, host: str) -> None:
    assert loopback.get("/healthz", headers={"Host": host}).status_code == 200
    assert loopback.get("/api/v1/info", headers={"Host": host, **loopback_env.auth}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8081", "127.0.0.1.evil.example", "testserver",
                                  "localhost.evil.example", "10.0.0.5:8081", ""])
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/info", "/api/v1/pods", "/metrics", "/docs"])
def test_a_foreign_host_header_is_refused(loopback_env: Env, loopback: TestClient, host: str, path: str) -> None:
    # Even with the right token: a page on evil.example that rebinds its name to 127.0.0.1 gets nothing.
    response = loopback.get(path, headers={"Host": host, **loopback_env.auth})
    assert response.status_code == 400, response.text
    assert loopback_env.token not in response.text
    assert not loopback_env.cloud.requests and not loopback_env.slurm.requests
    assert not loopback_env.prometheus.requests


def test_a_foreign_host_cannot_submit_a_job(loopback_env: Env, loopback: TestClient) -> None:
    response = loopback.post("/api/v1/jobs", headers={"Host": "evil.example", **loopback_env.auth},
                             json={"name": "x", "script": "#!/bin/sh\ntrue\n"})
    assert response.status_code == 400
    assert not loopback_env.slurm.requests


def test_configured_trusted_hosts_are_accepted(tmp_path: Path) -> None:
    env = make_env(tmp_path, trusted_hosts=["gpuops-api.internal"])
    with TestClient(env.app(), base_url="http://gpuops-api.internal:8081") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("host", ["*", "*.example", "http://api.example", "api.example:8081", "a b", "", "-x"])
def test_settings_refuse_malformed_trusted_hosts(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="trusted_hosts"):
        load_settings(write_config(tmp_path, trusted_hosts=[host]))


# --- Swagger UI without a CDN ---------------------------------------------------------------------------------

def test_docs_load_nothing_from_another_origin(anonymous: TestClient) -> None:
    response = anonymous.get("/docs")
    assert response.status_code == 200
    html = response.text
    # No absolute URL at all (CDN, favicon, validator): every asset is this API's own.
    assert not re.search(r"https?:|//[a-z]", html, re.IGNORECASE), html
    assert "cdn" not in html.lower()
    assert '"validatorUrl": null' in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css", "/docs/static/favicon.png"} \
        <= set(urls)
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in urls:
        asset = anonymous.get(url)  # no token: the page must load before anyone pastes one
        assert asset.status_code == 200, url
        assert kinds[Path(url).suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 1000, url
    assert "SwaggerUIBundle" in anonymous.get("/docs/static/swagger-ui-bundle.js").text
    assert "openapi" in anonymous.get("/openapi.json").json()


def test_docs_static_serves_only_its_files(anonymous: TestClient) -> None:
    for path in ("/docs/static/../../app.py", "/docs/static/%2e%2e/%2e%2e/etc/passwd", "/docs/static/missing.js"):
        assert anonymous.get(path).status_code == 404, path


def test_the_api_image_installs_the_docs_assets() -> None:
    # The package that ships the assets is pinned for the image (build-context.sh downloads these wheels).
    repo = Path(__file__).resolve().parents[3]
    image_pins = locks.versions(repo / "app/api/requirements.txt")
    assert image_pins["fastapi-offline"] == locks.versions(repo / "requirements.txt")["fastapi-offline"]
