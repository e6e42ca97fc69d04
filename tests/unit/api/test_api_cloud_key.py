"""Issue 12, item 5: the API reads pods only, so it needs a read-only key, and without one it says what it lacks.

On RunPod the deploy hands the API a key with Read Only permission (app_runpod_read_key_file), never the
account-wide RUNPOD_API_KEY; when none is given, the API's configuration has no cloud_api_key_file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from gpuops_api.config import load_settings
from gpuops_api.upstreams.cloud import NO_KEY

from .conftest import Env, TestClient, make_env, write_config
from .fakes import INDEX, recorded_job

RUNNING = INDEX["jobs"]["running"]
COMPLETED = INDEX["jobs"]["completed"]
#: Every route that asks the cloud (a job's output read on its pod does not: its SSH endpoint is the pods file's).
CLOUD_ROUTES = ["/api/v1/pods", "/api/v1/pods/gpuopsapirec-0", "/readyz"]
OUTPUT = f"/api/v1/jobs/{COMPLETED}/output"


def _output_on_its_pod(env: Env) -> None:
    """The completed job's output is only on its pod (read over SSH at the endpoint of the pods file)."""
    env.slurm.use_final_jobs()
    host = recorded_job("completed")["batch_host"]
    pod = env.cloud.pods[host]
    started = int(datetime.fromisoformat(pod["startedAt"].replace("Z", "+00:00")).timestamp())
    env.ssh.files[(f"runpod-{host}-{started}", f"/var/lib/gpuops/jobs/api/slurm-{COMPLETED}.out")] = "done\n"


@pytest.fixture
def keyless(tmp_path: Path) -> Env:
    return make_env(tmp_path, cloud="runpod", cloud_api_key_file=None)


def test_every_request_the_api_sends_the_cloud_is_a_read(env: Env, client: TestClient) -> None:
    # A Read Only key is enough: the API never creates, changes, stops or removes a pod (its writes go to Slurm).
    assert client.post("/api/v1/jobs", json={"script": "#!/bin/sh\necho hi\n", "name": "x"}).status_code < 300
    assert client.delete(f"/api/v1/jobs/{RUNNING}").status_code < 300
    _output_on_its_pod(env)
    for path in [*CLOUD_ROUTES, OUTPUT]:
        assert client.get(path).status_code == 200, path
    assert env.ssh.reads, "the job's output was not read on its pod"
    assert env.cloud.requests, "the routes above did not ask the cloud"
    assert {request.method for request in env.cloud.requests} == {"GET"}


def test_the_configuration_may_name_no_cloud_key(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, cloud="runpod", cloud_api_key_file=None))
    assert settings.cloud_api_key_file is None


def test_without_a_key_every_cloud_answer_says_what_is_missing(keyless: Env) -> None:
    _output_on_its_pod(keyless)
    with TestClient(keyless.app(), raise_server_exceptions=False) as client:
        client.headers.update(keyless.auth)
        for path in CLOUD_ROUTES[:-1]:
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.json() == {"detail": NO_KEY, "upstream": "cloud"}, path
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["upstreams"]["cloud"] == {"ok": False, "detail": NO_KEY}
        # What needs no cloud still works: a job's output is read on its pod at the pods file's endpoint.
        assert client.get("/api/v1/jobs").status_code == 200
        assert client.get("/api/v1/info").json()["cloud"] == "runpod"
        assert client.get(OUTPUT).json()["text"] == "done\n"
    assert "Read Only" in NO_KEY and "app_runpod_read_key_file" in NO_KEY
    assert not keyless.cloud.requests  # nothing was sent, not even without a key
    assert len(keyless.ssh.reads) == 1


def test_an_empty_cloud_key_file_is_named_and_never_sent(env: Env, client: TestClient) -> None:
    assert env.settings.cloud_api_key_file is not None
    env.settings.cloud_api_key_file.write_text(" \n")
    response = client.get("/api/v1/pods")
    assert response.status_code == 503
    assert response.json() == {"detail": f"the cloud API key file {env.settings.cloud_api_key_file} is empty",
                               "upstream": "cloud"}
    assert not env.cloud.requests
