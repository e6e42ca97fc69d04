"""Pods: the inventory's pods file joined with the cloud's live view; uptime and cost."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from .conftest import Env, TestClient, read_pods_file, replace_pods_file
from .fakes import INDEX, load


def _file_pods(env: Env) -> dict:
    return {pod["name"]: pod for pod in read_pods_file(env.settings)["pods"]}


def test_pods_join_the_inventory_and_the_cloud(client: TestClient, env: Env) -> None:
    body = client.get("/api/v1/pods").json()
    assert [pod["name"] for pod in body["pods"]] == sorted(INDEX["pods"])
    first = body["pods"][0]
    recorded = load("cloud/pod_0.json")["body"]
    assert first == {
        "name": "gpuopsapirec-0", "id": INDEX["pods"]["gpuopsapirec-0"], "status": "RUNNING", "role": "compute",
        "gpu_type": "NVIDIA GeForce RTX 4090", "gpu_count": 2, "cost_per_hr": recorded["cost"],
        "uptime_seconds": recorded["runtime"]["uptime"], "cost_so_far": recorded["cost"],
        "public_ip": recorded["ssh"]["direct"]["host"], "ssh_port": recorded["ssh"]["direct"]["port"],
    }
    # never the proxy
    assert first["public_ip"] != recorded["ssh"]["proxy"]["host"]
    assert body["pods"][1]["role"] == "compute"
    assert body["cost_per_hr_total"] == round(sum(pod["cost_per_hr"] for pod in body["pods"]), 4)


def test_one_pod_by_name_and_404_for_others(client: TestClient) -> None:
    assert client.get("/api/v1/pods/gpuopsapirec-1").json()["role"] == "compute"
    response = client.get("/api/v1/pods/nosuchpod")
    assert response.status_code == 404
    assert "nosuchpod" in response.json()["detail"]
    assert client.get("/api/v1/pods/bad%20name").status_code == 422


def test_a_stopped_pod_has_no_uptime_and_costs_nothing_now(client: TestClient, env: Env) -> None:
    pod_id = INDEX["pods"]["gpuopsapirec-1"]
    env.cloud.pods[pod_id] = {**env.cloud.pods[pod_id], "status": "EXITED", "cost": 0.0, "runtime": None,
                              "ssh": {"proxy": None, "direct": None}}
    body = client.get("/api/v1/pods").json()
    stopped = body["pods"][1]
    assert (stopped["status"], stopped["uptime_seconds"], stopped["cost_so_far"]) == ("EXITED", None, None)
    assert (stopped["public_ip"], stopped["ssh_port"], stopped["cost_per_hr"]) == (None, None, 0.0)
    assert body["cost_per_hr_total"] == body["pods"][0]["cost_per_hr"]


@pytest.mark.parametrize("status", ["PROVISIONING", "STARTING", "ERROR"])
def test_every_v2_status_is_reported(client: TestClient, env: Env, status: str) -> None:
    pod_id = INDEX["pods"]["gpuopsapirec-1"]
    env.cloud.pods[pod_id] = {**env.cloud.pods[pod_id], "status": status, "runtime": None,
                              "ssh": {"proxy": None, "direct": None}}
    pod = client.get("/api/v1/pods/gpuopsapirec-1").json()
    assert (pod["status"], pod["uptime_seconds"], pod["public_ip"]) == (status, None, None)


def test_a_status_from_the_future_is_unknown(client: TestClient, env: Env) -> None:
    pod_id = INDEX["pods"]["gpuopsapirec-1"]
    env.cloud.pods[pod_id] = {**env.cloud.pods[pod_id], "status": "HIBERNATING"}
    assert client.get("/api/v1/pods/gpuopsapirec-1").json()["status"] == "UNKNOWN"


def test_a_pod_the_cloud_no_longer_knows_is_terminated(client: TestClient, env: Env) -> None:
    del env.cloud.pods[INDEX["pods"]["gpuopsapirec-1"]]
    pod = client.get("/api/v1/pods/gpuopsapirec-1").json()
    assert pod["status"] == "TERMINATED"
    assert pod["cost_per_hr"] == _file_pods(env)["gpuopsapirec-1"]["cost_per_hr"]


def test_uptime_without_started_at_counts_from_first_sight(env: Env) -> None:
    now = [env.clock()]
    env.clock = lambda: now[0]
    pod_id = INDEX["pods"]["gpuopsapirec-0"]
    env.cloud.pods[pod_id] = {**env.cloud.pods[pod_id], "startedAt": None, "runtime": None, "cost": 0.74}
    with TestClient(env.app()) as client:
        client.headers.update(env.auth)
        assert client.get("/api/v1/pods/gpuopsapirec-0").json()["uptime_seconds"] == 0
        now[0] += 1800
        pod = client.get("/api/v1/pods/gpuopsapirec-0").json()
    assert (pod["uptime_seconds"], pod["cost_per_hr"], pod["cost_so_far"]) == (1800, 0.74, 0.37)


def test_uptime_follows_the_clouds_start_without_runtime(client: TestClient, env: Env) -> None:
    pod_id = INDEX["pods"]["gpuopsapirec-0"]
    restarted = datetime.fromtimestamp(env.clock() - 60).astimezone().isoformat()
    env.cloud.pods[pod_id] = {**env.cloud.pods[pod_id], "startedAt": restarted,
                              "runtime": {**env.cloud.pods[pod_id]["runtime"], "uptime": None}}
    assert client.get("/api/v1/pods/gpuopsapirec-0").json()["uptime_seconds"] == 60


def test_uptime_reported_by_the_cloud_wins(client: TestClient, env: Env) -> None:
    pod_id = INDEX["pods"]["gpuopsapirec-0"]
    env.cloud.pods[pod_id] = {**env.cloud.pods[pod_id], "runtime": {**env.cloud.pods[pod_id]["runtime"], "uptime": 7200}}
    pod = client.get("/api/v1/pods/gpuopsapirec-0").json()
    assert (pod["uptime_seconds"], pod["cost_so_far"]) == (7200, round(2 * pod["cost_per_hr"], 4))


def test_the_ssh_endpoint_is_the_inventorys_not_the_clouds(client: TestClient, env: Env) -> None:
    """The cloud is asked for status and cost only: the SSH endpoint shown is the pods file's."""
    pod_id = INDEX["pods"]["gpuopsapirec-1"]
    live = env.cloud.pods[pod_id]
    env.cloud.pods[pod_id] = {**live, "ssh": {**live["ssh"], "direct": {**live["ssh"]["direct"], "port": 1}}}
    pod = client.get("/api/v1/pods/gpuopsapirec-1").json()
    recorded = _file_pods(env)["gpuopsapirec-1"]["ssh"]
    assert (pod["public_ip"], pod["ssh_port"]) == (recorded["host"], recorded["port"]) != (live["ssh"]["direct"]["host"], 1)


def test_the_pods_file_is_read_again_when_it_is_replaced(client: TestClient, env: Env) -> None:
    assert len(client.get("/api/v1/pods").json()["pods"]) == 2
    data = read_pods_file(env.settings)
    data["pods"] = [pod for pod in data["pods"] if pod["name"] != "gpuopsapirec-1"]
    replace_pods_file(env.settings, data)
    assert [pod["name"] for pod in client.get("/api/v1/pods").json()["pods"]] == ["gpuopsapirec-0"]
    data["pods"][0]["ssh"]["port"] = 23000
    replace_pods_file(env.settings, data)
    assert client.get("/api/v1/pods/gpuopsapirec-0").json()["ssh_port"] == 23000


def test_info_without_and_with_grafana(client: TestClient, env: Env) -> None:
    assert client.get("/api/v1/info").json() == {"version": "0.1.0", "cloud": "local", "grafana_url": None,
                                                  "dashboards": {}}
    settings = env.settings.model_copy(update={"grafana_url": "http://127.0.0.1:3000"})
    # Configured but not answering (offline: no Grafana image): no links.
    with TestClient(env.app(settings)) as other:
        info = other.get("/api/v1/info", headers=env.auth).json()
    assert info["grafana_url"] is None and info["dashboards"] == {}
    grafana_up = httpx.MockTransport(lambda request: httpx.Response(200 if request.url.path == "/api/health" else 404,
                                                                    json={"database": "ok"}))
    with TestClient(env.app(settings, grafana=grafana_up)) as other:
        info = other.get("/api/v1/info", headers=env.auth).json()
    assert info["grafana_url"] == "http://127.0.0.1:3000"
    assert info["dashboards"] == {"fleet": "http://127.0.0.1:3000/d/gpuops-gpu-fleet",
                                  "jobs": "http://127.0.0.1:3000/d/gpuops-gpu-jobs",
                                  "slurm": "http://127.0.0.1:3000/d/gpuops-slurm"}
