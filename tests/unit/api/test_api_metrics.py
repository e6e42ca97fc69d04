"""/metrics: gpuops_slurm_* from the recorded slurmrestd replies, in Prometheus' text format."""

from __future__ import annotations

import pytest
from gpuops_api.slurmdata import parse_node
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Env, TestClient
from .fakes import load


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    return families


def test_busy_cluster(client: TestClient, env: Env) -> None:
    metrics = scrape(client)
    assert metrics["gpuops_slurm_up"] == {(): 1.0}
    nodes = {labels[0][1]: value for labels, value in metrics["gpuops_slurm_nodes"].items()}
    assert nodes == {"idle": 1, "mixed": 1, "allocated": 0, "down": 0, "drained": 0, "draining": 0}
    jobs = {labels[0][1]: value for labels, value in metrics["gpuops_slurm_jobs"].items()}
    states = [job["job_state"].lower() for job in env.slurm.jobs.values()]
    assert jobs == {**{s: 0 for s in ("pending", "running", "completed", "failed", "cancelled", "timeout")},
                    **{s: states.count(s) for s in set(states)}}
    assert jobs["running"] == 1 and jobs["pending"] == 1
    assert metrics["gpuops_slurm_pending_jobs"] == {(("reason", "Resources"),): 1.0}
    assert metrics["gpuops_slurm_gpus_allocated"] == {(): 1.0}
    assert metrics["gpuops_slurm_gpus_total"] == {(): 4.0}


def test_drained_and_draining_nodes(client: TestClient, env: Env) -> None:
    env.slurm.nodes_fixture = "slurm/nodes_drain.json"
    nodes = {labels[0][1]: value for labels, value in scrape(client)["gpuops_slurm_nodes"].items()}
    assert (nodes["drained"], nodes["draining"], nodes["idle"], nodes["mixed"]) == (1, 1, 0, 0)


def test_idle_cluster(client: TestClient, env: Env) -> None:
    env.slurm.nodes_fixture = "slurm/nodes_idle.json"
    env.slurm.use_final_jobs()
    metrics = scrape(client)
    assert metrics["gpuops_slurm_gpus_allocated"] == {(): 0.0}
    assert metrics["gpuops_slurm_pending_jobs"] == {}


@pytest.mark.parametrize(("state", "flags", "expected"), [
    ("idle", [], "idle"), ("mixed", [], "mixed"), ("allocated", [], "allocated"), ("down", [], "down"),
    ("idle", ["DRAIN"], "drained"), ("mixed", ["DRAIN"], "draining"), ("allocated", ["DRAIN"], "draining"),
    ("down", ["DRAIN"], "down"), ("IDLE", ["NOT_RESPONDING"], "idle"), ("future", [], "future"),
])
def test_node_states(state: str, flags: list[str], expected: str) -> None:
    raw = {**load("slurm/nodes_idle.json")["body"]["nodes"][0], "state": state, "state_flags": flags}
    assert parse_node(raw).state == expected


def test_job_cost_series_only_for_jobs_with_a_recorded_price() -> None:
    from dataclasses import replace

    from gpuops_api.metrics import SlurmSnapshot, render
    from gpuops_api.slurmdata import Job

    base = Job(id=7, name="train", user="gpuops", state="COMPLETED", reason=None, exit_code=0, nodes="p-0",
               node_count=1, gpus=2, partition="gpu", submit_time=1000, start_time=1000, end_time=4600,
               time_limit_minutes=None, stdout_path=None, batch_host="p-0", usd_per_gpu_hour=0.5, cost_usd=1.0)
    unpriced = replace(base, id=8, usd_per_gpu_hour=None, cost_usd=None)
    families = {f.name: f for f in text_string_to_metric_families(
        render(SlurmSnapshot(up=True, jobs=[unpriced, base])).decode())}
    samples = families["gpuops_slurm_job_cost_usd"].samples
    assert [(s.labels, s.value) for s in samples] == [({"job_id": "7", "user": "gpuops", "state": "completed"}, 1.0)]
