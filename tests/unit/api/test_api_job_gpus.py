"""POST /api/v1/jobs asks for GPUs per node (gpus_per_node), as submit_job.yml, the AWX survey and the web form do.

`gpus` once meant GPUs for the whole job on the command line and in AWX, GPUs per node here: with nodes=2 gpus=2
that was 2 GPUs one way and 4 the other. The request field is gpus_per_node, `gpus` is refused by name, and a
request that no `nodes` pods can hold is refused before Slurm is asked. The pods' GPU counts come from the pods file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpuops_api.models import JobRequest

from .conftest import Env, TestClient

HELLO = "#!/bin/bash\nnvidia-smi\n"


def pods(env: Env, *gpu_counts: int, networked: bool = True) -> None:
    """The deployment's pods file with one pod per GPU count."""
    env.settings.pods_file.write_text(json.dumps({"format": 1, "pods": [
        {"name": f"gpuops-{i}", "id": f"pod{i:010d}", "node": f"gpuops-{i}", "gpu_count": count,
         "global_networking": {"enabled": networked}} for i, count in enumerate(gpu_counts)]}))


def submitted_gpus(env: Env) -> list[str]:
    """What each submission asked slurmrestd for: v0.0.38's gres, later versions' tres_per_node."""
    return [job["job"].get("gres") or job["job"].get("tres_per_node", "") for job in env.slurm.submitted]


def test_gpus_per_node_goes_to_slurm_per_node(client: TestClient, env: Env) -> None:
    pods(env, 2, 2)
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "nodes": 2, "gpus_per_node": 2})
    assert response.status_code == 201, response.text
    assert [job["job"]["nodes"] for job in env.slurm.submitted] == ["2"]
    assert submitted_gpus(env) == ["gpu:2"]  # per node: 4 GPUs in all


def test_gpus_is_refused_by_name_with_the_field_to_send(client: TestClient, env: Env) -> None:
    for body in ({"gpus": 1}, {"gpus": 1, "gpus_per_node": 1}, {"gpus": 0}):
        response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", **body})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith("body: gpus is not a field of a job request"), detail
        assert "Send gpus_per_node: the GPUs on each of the job's nodes (nodes x gpus_per_node in all)" in detail
    assert env.slurm.submitted == []


def test_more_gpus_per_node_than_nodes_pods_have_is_refused_before_slurm(client: TestClient, env: Env) -> None:
    pods(env, 1, 2)
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "nodes": 2, "gpus_per_node": 2})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "gpus_per_node=2 with nodes=2 is 2 GPU(s) on each of 2 node(s), 4 in all. This cluster's pods have GPUs: 2, 1, "
        "so a job on 2 node(s) can have at most 1 GPU(s) per node: ask for gpus_per_node 0 to 1.")
    assert env.slurm.submitted == []
    # One node with 2 GPUs exists: 2 per node on 1 node is fine (3 GPUs in the cluster, 2 on the largest pod).
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "nodes": 1, "gpus_per_node": 2})
    assert response.status_code == 201, response.text
    assert submitted_gpus(env) == ["gpu:2"]


def test_a_cluster_total_is_no_per_node_limit(client: TestClient, env: Env) -> None:
    pods(env, 1, 1)  # 2 GPUs, but no pod has 2
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "gpus_per_node": 2})
    assert response.status_code == 400
    assert "can have at most 1 GPU(s) per node" in response.json()["detail"]
    assert env.slurm.submitted == []


def test_more_nodes_than_pods_is_refused(client: TestClient, env: Env) -> None:
    pods(env, 1, 1)
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "nodes": 3})
    assert response.status_code == 400
    assert response.json()["detail"] == "nodes=3: this cluster has 2 pod(s), so a job can run on 1 to 2 node(s)."
    assert env.slurm.submitted == []


def test_without_a_pods_file_slurm_judges(client: TestClient, env: Env) -> None:
    env.settings.pods_file.unlink()
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "gpus_per_node": 8})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Slurm refused the job: Requested node configuration is not available")


@pytest.mark.parametrize("value", [-1, 65, "two"])
def test_gpus_per_node_out_of_range_is_422_naming_the_field(client: TestClient, env: Env, value: object) -> None:
    response = client.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "gpus_per_node": value})
    assert response.status_code == 422
    assert "body field 'gpus_per_node'" in response.json()["detail"]
    assert env.slurm.submitted == []


def test_the_openapi_document_names_gpus_per_node_only(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["JobRequest"]
    assert "gpus" not in schema["properties"]
    field = schema["properties"]["gpus_per_node"]
    assert (field["minimum"], field["maximum"], field["default"]) == (0, 64, 0)
    assert "on each of the job's nodes" in field["description"]


def test_the_web_forms_limits_are_the_apis() -> None:
    """app/web/src/lib/jobRequestLimits.json (what the web form checks and offers) holds the API's bounds and
    defaults, under the API's field names."""
    web = json.loads((Path(__file__).resolve().parents[3] / "app/web/src/lib/jobRequestLimits.json").read_text())
    api = JobRequest.model_json_schema()["properties"]
    assert set(web) == {"nodes", "gpus_per_node", "time_limit_minutes"}
    for name, limits in web.items():
        assert {"min": api[name]["minimum"], "max": api[name]["maximum"], "default": api[name]["default"]} == limits, name
