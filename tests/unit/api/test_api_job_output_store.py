"""Finished jobs' output handed over by their nodes (PUT /api/v1/nodes/...) and served from the service plane."""

from __future__ import annotations

import json
import secrets

import pytest

from .conftest import Env, TestClient
from .fakes import INDEX, recorded_job

JOBS = INDEX["jobs"]
JOB = JOBS["completed"]
HOST = recorded_job("completed")["batch_host"]
OTHER_HOST = "another-node"


def node_token(env: Env, node: str) -> str:
    token = secrets.token_urlsafe(30)
    assert env.settings.job_output_store is not None
    (env.settings.job_output_store / "tokens" / node).write_text(token + "\n")
    return token


def put(anonymous: TestClient, node: str, token: str | None, job: int = JOB, stream: str = "stdout",
        body: bytes = b"hello\n", **params: object):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return anonymous.put(f"/api/v1/nodes/{node}/jobs/{job}/output/{stream}", content=body, headers=headers,
                         params=params)


@pytest.fixture
def final(env: Env) -> Env:
    env.slurm.use_final_jobs()
    assert HOST != OTHER_HOST
    return env


def test_the_batch_host_hands_over_the_output_and_the_api_serves_it_without_ssh(
        final: Env, anonymous: TestClient, client: TestClient) -> None:
    token = node_token(final, HOST)
    text = "".join(f"line {i}\n" for i in range(1, 41))
    response = put(anonymous, HOST, token, body=text.encode(), restart=0)
    assert response.status_code == 204, response.text
    assert put(anonymous, HOST, token, stream="stderr", body=b"warning\n").status_code == 204
    kept = final.settings.job_output_store / "jobs" / str(JOB)
    assert (kept / f"slurm-{JOB}.out").read_text() == text
    assert (kept / f"slurm-{JOB}.err").read_text() == "warning\n"
    assert oct((kept / f"slurm-{JOB}.out").stat().st_mode & 0o777) == "0o600"
    manifest = json.loads((kept / "manifest.json").read_text())
    assert manifest["stdout"]["node"] == HOST and manifest["stdout"]["bytes"] == len(text)
    body = client.get(f"/api/v1/jobs/{JOB}/output", params={"lines": 2}).json()
    assert body == {"id": JOB, "text": "line 39\nline 40\n", "lines": 2, "truncated": True, "source": "service-plane"}
    assert not final.ssh.reads


def test_a_truncated_hand_over_says_so(final: Env, anonymous: TestClient, client: TestClient) -> None:
    token = node_token(final, HOST)
    assert put(anonymous, HOST, token, body=b"the end\n", truncated="true").status_code == 204
    body = client.get(f"/api/v1/jobs/{JOB}/output").json()
    assert body["text"] == "the end\n" and body["truncated"] is True


@pytest.mark.parametrize("token", [None, "", "x" * 40], ids=["none", "empty", "wrong"])
def test_a_node_needs_its_own_token(final: Env, anonymous: TestClient, token: str | None) -> None:
    node_token(final, HOST)
    response = put(anonymous, HOST, token)
    assert response.status_code == 401, response.text
    assert not (final.settings.job_output_store / "jobs" / str(JOB)).exists()


def test_the_api_token_is_not_a_node_token(final: Env, anonymous: TestClient) -> None:
    node_token(final, HOST)
    assert put(anonymous, HOST, final.token).status_code == 401


def test_a_node_without_a_token_file_is_refused(final: Env, anonymous: TestClient) -> None:
    assert put(anonymous, HOST, "t" * 40).status_code == 401


def test_a_node_cannot_hand_over_another_nodes_job(final: Env, anonymous: TestClient) -> None:
    """OTHER_HOST has a valid token of its own, but job JOB ran on HOST."""
    token = node_token(final, OTHER_HOST)
    response = put(anonymous, OTHER_HOST, token)
    assert response.status_code == 403
    assert f"batch host is {HOST}, not {OTHER_HOST}" in response.json()["detail"]
    # Nor with another node's token under its own name.
    assert put(anonymous, HOST, token).status_code == 401
    assert not (final.settings.job_output_store / "jobs" / str(JOB)).exists()


def test_an_earlier_run_never_replaces_a_later_ones_output(final: Env, anonymous: TestClient,
                                                            client: TestClient) -> None:
    token = node_token(final, HOST)
    assert put(anonymous, HOST, token, body=b"second run\n", restart=1).status_code == 204
    assert put(anonymous, HOST, token, body=b"first run\n", restart=0).status_code == 204
    assert client.get(f"/api/v1/jobs/{JOB}/output").json()["text"] == "second run\n"
    assert put(anonymous, HOST, token, body=b"third run\n", restart=2).status_code == 204
    assert client.get(f"/api/v1/jobs/{JOB}/output").json()["text"] == "third run\n"


@pytest.mark.parametrize(("node", "stream", "job"), [
    ("../tokens", "stdout", JOB), ("Node_1", "stdout", JOB), (HOST, "stdin", JOB), (HOST, "../x", JOB),
    (HOST, "stdout", 0),
])
def test_bad_names_are_refused_before_anything_is_written(final: Env, anonymous: TestClient, node: str, stream: str,
                                                          job: int) -> None:
    token = node_token(final, HOST)
    response = put(anonymous, node, token, job=job, stream=stream)
    assert response.status_code in (401, 404, 422), response.text
    assert list((final.settings.job_output_store / "jobs").glob("*")) == []


def test_unknown_job_is_404(final: Env, anonymous: TestClient) -> None:
    token = node_token(final, HOST)
    assert put(anonymous, HOST, token, job=999_999).status_code == 404
