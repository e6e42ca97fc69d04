"""/metrics: gpuops_cost_* from the recorded cloud pods (what the spend-above-budget alerts read)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Env, TestClient


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
            for family in text_string_to_metric_families(response.text)}


def test_cost_of_the_running_pods(client: TestClient, env: Env) -> None:
    metrics = scrape(client)
    running = [pod for pod in env.cloud.pods.values() if pod["status"] == "RUNNING"]
    assert len(running) == 2
    assert metrics["gpuops_cloud_up"] == {(): 1.0}
    assert metrics["gpuops_cost_usd_per_hour"] == {(): round(sum(pod["cost"] for pod in running), 4)}
    per_pod = {dict(labels)["pod"]: value for labels, value in metrics["gpuops_pod_cost_usd_per_hour"].items()}
    assert per_pod == {pod["name"]: pod["cost"] for pod in running}
    # The Slurm metrics are still there, beside them.
    assert metrics["gpuops_slurm_up"] == {(): 1.0}


def test_a_stopped_pod_costs_nothing(client: TestClient, env: Env) -> None:
    stopped = next(iter(env.cloud.pods.values()))
    stopped.update(status="EXITED", cost=0)
    metrics = scrape(client)
    assert metrics["gpuops_cost_usd_per_hour"] == {(): 1.38}
    assert stopped["name"] not in {dict(labels)["pod"] for labels in metrics["gpuops_pod_cost_usd_per_hour"]}


def test_cloud_down_gives_no_cost_and_says_so(client: TestClient, env: Env) -> None:
    env.cloud.down = True
    metrics = scrape(client)
    assert metrics["gpuops_cloud_up"] == {(): 0.0}
    assert "gpuops_cost_usd_per_hour" not in metrics
    assert metrics["gpuops_slurm_up"] == {(): 1.0}
