"""Upstream failures: 503 naming the upstream, never a crash; /healthz stays 200."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from gpuops_api.app import create_app
from gpuops_api.config import load_settings

from .conftest import Env, TestClient, make_env
from .fakes import INDEX

RUNNING = INDEX["jobs"]["running"]
#: Routes that need each upstream (the running job's output needs Slurm and SSH: its pod's SSH endpoint is the
#: pods file's, not the cloud's).
ROUTES_BY_UPSTREAM = {
    "prometheus": [("GET", "/api/v1/gpus"), ("GET", "/api/v1/gpus/history?range=15m"),
                   ("GET", f"/api/v1/jobs/{RUNNING}/gpus")],
    "slurmrestd": [("GET", "/api/v1/jobs"), ("GET", f"/api/v1/jobs/{RUNNING}"), ("DELETE", f"/api/v1/jobs/{RUNNING}"),
                   ("GET", f"/api/v1/jobs/{RUNNING}/output"), ("POST", "/api/v1/jobs")],
    "cloud": [("GET", "/api/v1/pods"), ("GET", "/api/v1/pods/gpuopsapirec-0")],
}
CASES = [(upstream, method, path) for upstream, routes in ROUTES_BY_UPSTREAM.items() for method, path in routes]


def fake(env: Env, upstream: str):
    return {"prometheus": env.prometheus, "slurmrestd": env.slurm, "cloud": env.cloud}[upstream]


@pytest.mark.parametrize("failure", ["down", "timeout", "status_500", "status_502"])
@pytest.mark.parametrize(("upstream", "method", "path"), CASES, ids=[f"{u}:{m} {p}" for u, m, p in CASES])
def test_a_failing_upstream_answers_503_naming_it(env: Env, client: TestClient, upstream: str, method: str,
                                                   path: str, failure: str) -> None:
    broken = fake(env, upstream)
    if failure.startswith("status_"):
        broken.status_override = int(failure.removeprefix("status_"))
    else:
        setattr(broken, failure, True)
    response = client.request(method, path, json={"script": "#!/bin/sh\n", "name": "x"} if method == "POST" else None)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["upstream"] == upstream
    assert body["detail"]
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("upstream", ["prometheus", "slurmrestd", "cloud"])
def test_readyz_names_the_upstream_that_is_down(env: Env, client: TestClient, upstream: str) -> None:
    assert client.get("/readyz").status_code == 200
    fake(env, upstream).down = True
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["upstreams"][upstream]["ok"] is False
    assert "Connection refused" in body["upstreams"][upstream]["detail"]
    assert all(check["ok"] for name, check in body["upstreams"].items() if name != upstream)
    assert client.get("/healthz").status_code == 200


def test_readyz_when_all_upstreams_answer(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] is True
    assert set(body["upstreams"]) == {"prometheus", "slurmrestd", "cloud"}
    assert "UP" in body["upstreams"]["slurmrestd"]["detail"]


def test_ssh_down_answers_503_naming_ssh(env: Env, client: TestClient) -> None:
    env.ssh.down = True
    response = client.get(f"/api/v1/jobs/{INDEX['jobs']['completed']}/output")
    assert response.status_code == 503
    assert response.json()["upstream"] == "ssh"


def test_metrics_report_slurm_down_instead_of_failing(env: Env, client: TestClient) -> None:
    env.slurm.down = True
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "gpuops_slurm_up 0.0" in response.text
    assert "gpuops_slurm_nodes" not in response.text


def test_a_wrong_jwt_key_says_which_file_to_fix(env: Env, client: TestClient) -> None:
    env.settings.slurm_jwt_key_file.write_bytes(b"not the controller's key, though just as long as one")
    response = client.get("/api/v1/jobs")
    assert response.status_code == 503
    assert response.json()["upstream"] == "slurmrestd"
    assert "slurm_jwt_key_file" in response.json()["detail"]


def test_a_missing_jwt_key_file_is_a_503_not_a_crash(env: Env, client: TestClient) -> None:
    env.settings.slurm_jwt_key_file.unlink()
    response = client.get("/api/v1/jobs")
    assert response.status_code == 503
    assert "cannot read the Slurm JWT key file" in response.json()["detail"]
    assert not env.slurm.requests


def test_a_wrong_cloud_key_says_which_file_to_fix(env: Env, client: TestClient) -> None:
    env.settings.cloud_api_key_file.write_text("another-key\n")
    response = client.get("/api/v1/pods")
    assert response.status_code == 503
    assert response.json() == {"detail": "the cloud API refused the key in cloud_api_key_file (HTTP 401)",
                               "upstream": "cloud"}


def test_keys_are_read_again_when_their_files_change(env: Env, client: TestClient) -> None:
    env.settings.cloud_api_key_file.write_text("rotated-key-of-some-other-length\n")
    assert client.get("/api/v1/pods").status_code == 503
    env.cloud.key = "rotated-key-of-some-other-length"
    assert client.get("/api/v1/pods").status_code == 200


@pytest.mark.parametrize(("content", "why"), [
    ("{not json", "not JSON"),
    ('{"format": 1, "pods": {}}', "pods: Input should be a valid list"),
    ('{"format": 1, "pods": [{"name": "p"}]}', "pods.0.id: Field required"),
    ('{"format": 2, "pods": []}', "format 2, this API reads format 1"),
    ('{"format": 1, "pods": [{"name": "p", "id": "a", "node": "p"}, {"name": "p", "id": "b", "node": "q"}]}',
     "pod 'p' is listed twice"),
], ids=["not-json", "not-a-list", "no-id", "newer-format", "twice"])
def test_a_broken_pods_file_is_a_503_naming_the_file_and_the_fix(env: Env, client: TestClient, content: str,
                                                                 why: str) -> None:
    env.settings.pods_file.write_text(content)
    response = client.get("/api/v1/pods")
    assert response.status_code == 503
    assert response.json()["upstream"] == "inventory"
    detail = response.json()["detail"]
    assert f"cannot read the deployment's pods file {env.settings.pods_file}: {why}" in detail
    assert "playbooks/stack.yml" in detail


def test_no_pods_file_means_no_pods(env: Env, client: TestClient) -> None:
    env.settings.pods_file.unlink()
    assert client.get("/api/v1/pods").json() == {"pods": [], "cost_per_hr_total": 0.0}


def test_prometheus_refusing_a_query_is_a_503(env: Env, client: TestClient) -> None:
    env.prometheus.refuse = True  # Prometheus' recorded answer to an invalid query
    response = client.get("/api/v1/gpus")
    assert response.status_code == 503
    assert "Prometheus refused the query" in response.json()["detail"]
    assert "parse error" in response.json()["detail"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_real_connection_failures_are_503s(tmp_path: Path) -> None:
    """No fakes: every upstream URL points at a closed port."""
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    env = make_env(tmp_path)
    settings = load_settings(env.settings.token_file.parent / "api.yaml").model_copy(update={
        "prometheus_url": url, "slurmrestd_url": url, "cloud_api_url": url + "/v2", "upstream_timeout_seconds": 2})
    with TestClient(create_app(settings, clock=env.clock), raise_server_exceptions=False) as client:
        client.headers.update(env.auth)
        for path, upstream in [("/api/v1/gpus", "prometheus"), ("/api/v1/jobs", "slurmrestd"),
                               ("/api/v1/pods", "cloud")]:
            response = client.get(path)
            assert response.status_code == 503, response.text
            assert response.json()["upstream"] == upstream
            assert f"cannot reach {upstream} at {url}" in response.json()["detail"]
        assert client.get("/readyz").status_code == 503
        assert client.get("/metrics").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_slurm_api_version_is_read_from_slurmrestd_once(env: Env, client: TestClient) -> None:
    # As deployed: no version in the configuration; slurmrestd 22.05's own OpenAPI document says v0.0.38.
    assert env.settings.slurm_api_version is None
    assert client.get("/api/v1/jobs").status_code == 200
    assert client.get("/api/v1/jobs").status_code == 200
    assert env.slurm.openapi_reads == 1
    assert {r.url.path for r in env.slurm.requests} >= {"/openapi/v3", "/slurm/v0.0.38/jobs"}


def test_a_slurmrestd_offering_no_version_the_api_reads_is_a_503_naming_both(
        env: Env, client: TestClient, tmp_path: Path) -> None:
    # The recorded document with its paths moved to versions this API does not parse (Slurm 23.02 offered
    # v0.0.37 to v0.0.39; v0.0.39 only: tests/unit/api/test_api_slurm_versions.py).
    import json

    from .fakes import FIXTURES

    recorded = json.loads((FIXTURES / env.slurm.openapi_fixture).read_text())
    recorded["body"]["paths"] = {p.replace("/v0.0.38/", "/v0.0.39/"): v for p, v in recorded["body"]["paths"].items()}
    recorded["body"]["paths"]["/slurm/v0.0.37/ping"] = {}
    target = FIXTURES / "slurm" / f"_test_openapi_{tmp_path.name}.json"
    target.write_text(json.dumps(recorded))
    try:
        env.slurm.openapi_fixture = target.relative_to(FIXTURES).as_posix()
        response = client.get("/api/v1/jobs")
    finally:
        target.unlink()
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "slurmrestd offers the OpenAPI versions v0.0.37, v0.0.39" in detail
    assert "the gpuops API reads v0.0.38, v0.0.40, v0.0.41, v0.0.42" in detail


def test_offered_versions_and_the_choice() -> None:
    from gpuops_api.errors import UpstreamError
    from gpuops_api.upstreams.slurm import choose_version, offered_versions

    document = {"paths": {"/openapi/v3": {}, "/slurm/v0.0.38/jobs": {}, "/slurm/v0.0.37/jobs": {},
                          "/slurmdb/v0.0.38/jobs": {}, "/slurm/v0.0.40/jobs": {}}}
    assert offered_versions(document) == ["v0.0.37", "v0.0.38", "v0.0.40"]
    assert choose_version(["v0.0.37", "v0.0.38", "v0.0.40"]) == "v0.0.40"
    assert choose_version(["v0.0.37", "v0.0.38", "v0.0.39"]) == "v0.0.38"
    with pytest.raises(UpstreamError):
        choose_version([])
