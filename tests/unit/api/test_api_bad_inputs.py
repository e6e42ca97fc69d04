"""Bad inputs of the README's security table that no other test tries: oversize bodies, unknown body fields,
hostile path names. Each is refused before anything is asked of an upstream or written."""

from __future__ import annotations

import json
import secrets

import pytest
from gpuops_api.app import MAX_BODY_BYTES

from .conftest import Env, TestClient
from .fakes import INDEX, recorded_job

COMPLETED = INDEX["jobs"]["completed"]
HOST = recorded_job("completed")["batch_host"]


def _node_token(env: Env, node: str) -> str:
    token = secrets.token_urlsafe(30)
    assert env.settings.job_output_store is not None
    (env.settings.job_output_store / "tokens" / node).write_text(token + "\n")
    return token


def _kept(env: Env) -> list[str]:
    assert env.settings.job_output_store is not None
    return sorted(str(p) for p in (env.settings.job_output_store / "jobs").rglob("*"))


def test_an_oversize_job_output_is_refused_before_it_is_read(env: Env, anonymous: TestClient) -> None:
    env.slurm.use_final_jobs()
    token = _node_token(env, HOST)
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = anonymous.put(f"/api/v1/nodes/{HOST}/jobs/{COMPLETED}/output/stdout", content=body,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413, response.text[:300]
    assert _kept(env) == []
    # The same node, the same job, a body within bounds: kept (so the refusal was the size).
    ok = anonymous.put(f"/api/v1/nodes/{HOST}/jobs/{COMPLETED}/output/stdout", content=b"done\n",
                       headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 204, ok.text


def test_an_oversize_submission_is_refused_before_slurm_is_asked(env: Env, client: TestClient) -> None:
    body = json.dumps({"script": "#!/bin/sh\n#" + "x" * MAX_BODY_BYTES, "name": "big"}).encode()
    response = client.post("/api/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    assert not env.slurm.submitted and not env.slurm.requests


@pytest.mark.parametrize("extra", [{"user": "root"}, {"uid": 0}, {"account": "other"},
                                   {"environment": {"LD_PRELOAD": "/tmp/x.so"}}, {"Script": "#!/bin/sh\n"}],
                         ids=["user", "uid", "account", "environment", "Script"])
def test_a_submission_with_a_field_the_api_does_not_know_is_refused_by_name(env: Env, client: TestClient,
                                                                            extra: dict) -> None:
    response = client.post("/api/v1/jobs", json={"script": "#!/bin/sh\necho hi\n", "name": "ok", **extra})
    assert response.status_code == 422, response.text
    (field,) = extra
    assert f"body field '{field}': Extra inputs are not permitted" in response.json()["detail"]
    assert not env.slurm.submitted


@pytest.mark.parametrize("name", ["..", "..%2F..%2Fetc%2Fpasswd", "a%00b", "a b", "x" * 65, "%2e%2e", "gpuops$(id)"])
def test_a_hostile_pod_name_is_refused_without_asking_the_cloud(env: Env, client: TestClient, name: str) -> None:
    response = client.get(f"/api/v1/pods/{name}")
    assert response.status_code in (404, 422), response.text
    assert not env.cloud.requests


HOSTILE_SCRIPT = ("#!/bin/bash\n# {{ lookup('pipe', 'id') }} {% raw %}x{% endraw %} {{ 7*7 }}\n"
                  "arr=(a b c); echo ${#arr[@]} $((1+1)) `id` $(id)\n")


def test_a_script_with_templates_reaches_slurm_as_the_same_text(env: Env, client: TestClient) -> None:
    """The API hands Slurm the script byte for byte: nothing in it is a template or a shell word to the API."""
    response = client.post("/api/v1/jobs", json={"script": HOSTILE_SCRIPT, "name": "templated"})
    assert response.status_code == 201, response.text
    (body,) = env.slurm.submitted
    # slurmrestd takes the script beside the job (v0.0.38/40) or inside it (later versions).
    assert body.get("script", body["job"].get("script")) == HOSTILE_SCRIPT


@pytest.mark.parametrize("name", ["{{ lookup('pipe', 'id') }}", "{% raw %}x", "$(id)", "${#a[@]}"])
def test_a_job_name_with_a_template_is_refused_before_slurm_is_asked(env: Env, client: TestClient,
                                                                      name: str) -> None:
    response = client.post("/api/v1/jobs", json={"script": "#!/bin/sh\ntrue\n", "name": name})
    assert response.status_code == 422, response.text
    assert "name" in response.json()["detail"]
    assert not env.slurm.submitted
