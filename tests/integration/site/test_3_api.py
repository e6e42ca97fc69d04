"""The API against the real Prometheus, the service plane's slurmrestd, cloud API and pods of the site."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.integration.site.conftest import wait_until

pytestmark = pytest.mark.integration

HELLO = "#!/bin/sh\necho hello from $(hostname)\necho GPUS=${CUDA_VISIBLE_DEVICES:-none}\n"


def finished(api: httpx.Client, job_id: int, timeout: float = 120) -> dict:
    job, _ = wait_until(lambda: (lambda j: j if j["state"] not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")
                                 else None)(api.get(f"/api/v1/jobs/{job_id}").json()), timeout, interval=1)
    assert job, f"job {job_id} did not finish within {timeout} s"
    return job


def test_pods_come_from_terraform_and_the_cloud(converged):
    with converged.api_client() as api:
        answer = api.get("/api/v1/pods")
    assert answer.status_code == 200, answer.text
    pods = {pod["name"]: pod for pod in answer.json()["pods"]}
    cloud = {pod["name"]: pod for pod in converged.pod_list()}
    assert set(pods) == set(cloud)
    for name, pod in pods.items():
        assert pod["id"] == cloud[name]["id"] and pod["status"] == "RUNNING"
        assert pod["gpu_count"] == cloud[name]["gpu"]["count"] and pod["cost_per_hr"] == pytest.approx(cloud[name]["cost"])
        assert pod["uptime_seconds"] is not None and pod["uptime_seconds"] >= 0
        assert pod["cost_so_far"] is not None and pod["cost_so_far"] >= 0
    assert answer.json()["cost_per_hr_total"] == pytest.approx(sum(p["cost"] for p in cloud.values()))
    # Slurm's controller is on the service plane: every pod is a compute node.
    assert {pod["role"] for pod in pods.values()} == {"compute"}


def test_gpus_now_and_over_time_from_prometheus(converged):
    with converged.api_client() as api:
        gpus = api.get("/api/v1/gpus").json()["gpus"]
        assert len(gpus) == sum(pod["gpu"]["count"] for pod in converged.pod_list())
        for gpu in gpus:
            assert 0 <= gpu["util_percent"] <= 100 and gpu["mem_total_mib"] > 0 and gpu["temp_c"] > 0
        history = api.get("/api/v1/gpus/history", params={"range": "5m"}).json()
        assert {s["metric"] for s in history["series"]} >= {"util_percent", "mem_used_mib", "temp_c", "power_w"}
        assert all(s["points"] for s in history["series"])
        bad = api.get("/api/v1/gpus/history", params={"range": "forever"})
        assert bad.status_code == 422 and "range" in bad.text


def test_submit_follow_output_and_gpu_series_of_a_job(converged):
    with converged.api_client() as api:
        answer = api.post("/api/v1/jobs", json={"script": HELLO + "sleep 15\n", "name": "api-it", "gpus_per_node": 1,
                                                "time_limit_minutes": 5})
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        running, _ = wait_until(lambda: api.get(f"/api/v1/jobs/{job_id}").json()["state"] == "RUNNING", 60)
        assert running
        series, _ = wait_until(lambda: api.get(f"/api/v1/jobs/{job_id}/gpus", params={"range": "5m"}).json()["series"], 45)
        assert series, "no GPU series for the job"
        job = finished(api, job_id)
        assert job["state"] == "COMPLETED" and job["exit_code"] == 0 and job["name"] == "api-it"
        # Its node handed the output to the service plane when the job ended: served from there.
        output, _ = wait_until(lambda: (o := api.get(f"/api/v1/jobs/{job_id}/output").json())["source"]
                               == "service-plane" and o, 30)
        assert output, "the job's output never reached the service plane"
        assert "hello from" in output["text"] and "GPUS=0" in output["text"]
        assert (converged.stack_dir / "job-output" / "jobs" / str(job_id) / f"slurm-{job_id}.out").read_text() \
            == output["text"]
        listed = api.get("/api/v1/jobs", params={"state": "COMPLETED", "limit": 100}).json()
        assert job_id in [j["id"] for j in listed["jobs"]]
        # Its cost: the price per GPU-hour of its pod at allocation (recorded in Slurm's accounting) times its
        # GPU-hours.
        pod = next(p for p in converged.pod_list() if p["name"] == job["batch_host"])
        assert job["usd_per_gpu_hour"] == pytest.approx(pod["cost"] / pod["gpu"]["count"], abs=1e-6), (job, pod)
        hours = (job["end_time"] - job["start_time"]) / 3600
        # (to the API's 4 decimals: half-way cases round either way in binary floating point)
        assert job["cost_usd"] == pytest.approx(job["usd_per_gpu_hour"] * job["gpus"] * hours, abs=1e-4)
        assert job["cost_usd"] > 0
        spend = api.get("/api/v1/spend").json()
        assert spend["total_usd"] >= job["cost_usd"] > 0 and spend["priced_jobs"] >= 1
        assert [row["user"] for row in spend["by_user"]] == ["gpuops"]


def test_a_failing_job_reports_failed_and_its_exit_code(converged):
    with converged.api_client() as api:
        job_id = api.post("/api/v1/jobs", json={"script": "#!/bin/sh\necho failing\nexit 3\n", "name": "api-fail"}).json()["id"]
        job = finished(api, job_id)
    assert job["state"] == "FAILED" and job["exit_code"] == 3


def test_cancel_a_running_job(converged):
    with converged.api_client() as api:
        job_id = api.post("/api/v1/jobs", json={"script": "#!/bin/sh\nsleep 300\n", "name": "api-cancel"}).json()["id"]
        assert wait_until(lambda: api.get(f"/api/v1/jobs/{job_id}").json()["state"] == "RUNNING", 60)[0]
        answer = api.delete(f"/api/v1/jobs/{job_id}")
        assert answer.status_code == 202, answer.text
        job = finished(api, job_id)
        assert job["state"] == "CANCELLED"
        again = api.delete(f"/api/v1/jobs/{job_id}")
        assert again.status_code == 409


def test_bad_input_gets_a_clear_4xx(converged):
    with converged.api_client() as api:
        no_shebang = api.post("/api/v1/jobs", json={"script": "echo hi", "name": "x"})
        assert no_shebang.status_code == 422 and "#!" in no_shebang.text
        too_many = api.post("/api/v1/jobs", json={"script": HELLO, "name": "x", "gpus_per_node": 1000})
        assert too_many.status_code == 422
        assert api.get("/api/v1/jobs/999999").status_code == 404
        assert api.get("/api/v1/pods/nope").status_code == 404


def test_every_data_endpoint_needs_the_token(converged):
    routes = converged.api_client().get("/openapi.json").json()["paths"]
    open_paths = {"/healthz", "/readyz"}
    with httpx.Client(base_url=converged.api_url, timeout=30) as anonymous, converged.api_client("wrong") as wrong:
        for path, methods in routes.items():
            if path in open_paths:
                continue
            concrete = (path.replace("{job_id}", "1").replace("{name}", "x").replace("{id}", "1")
                        .replace("{node}", "x").replace("{stream}", "stdout"))
            for method in methods:
                for client in (anonymous, wrong):
                    answer = client.request(method.upper(), concrete)
                    assert answer.status_code == 401, (method, path, answer.status_code)
        assert anonymous.get("/metrics").status_code == 401


def test_metrics_has_the_slurm_figures(converged):
    with converged.api_client() as api:
        text = api.get("/metrics").text
    # Every priced job slurmctld still knows has its cost series (the smoke job ran on a GPU).
    assert 'gpuops_slurm_job_cost_usd{job_id="' in text
    assert "gpuops_slurm_up 1.0" in text
    assert 'gpuops_slurm_nodes{state="idle"}' in text or 'gpuops_slurm_nodes{state="mixed"}' in text
    assert "gpuops_slurm_gpus_total" in text and "gpuops_slurm_jobs{" in text


def test_cors_only_for_the_web_origin(converged):
    with converged.api_client() as api:
        allowed = api.options("/api/v1/pods", headers={"Origin": converged.web_url, "Access-Control-Request-Method": "GET"})
        denied = api.options("/api/v1/pods", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert allowed.headers.get("access-control-allow-origin") == converged.web_url
    assert "access-control-allow-origin" not in denied.headers


def stop_slurmrestd(site) -> None:
    subprocess.run(["docker", "stop", "--time", "2", f"{site.project}-slurmrestd-1"], check=True, capture_output=True)


def test_slurmrestd_outage_gives_503_naming_it_and_recovers(converged):
    site = converged
    stop_slurmrestd(site)
    try:
        with site.api_client() as api:
            down, _ = wait_until(lambda: api.get("/api/v1/jobs").status_code == 503, 30)
            assert down
            answer = api.get("/api/v1/jobs")
            assert answer.json()["upstream"] == "slurmrestd" and "slurmrestd" in answer.json()["detail"]
            ready = httpx.get(f"{site.api_url}/readyz", timeout=30)
            assert ready.status_code == 503 and ready.json()["upstreams"]["slurmrestd"]["ok"] is False
            assert ready.json()["upstreams"]["prometheus"]["ok"] is True
            assert httpx.get(f"{site.api_url}/healthz", timeout=10).status_code == 200
            assert api.get("/api/v1/pods").status_code == 200  # the rest keeps working
    finally:
        subprocess.run(["docker", "start", f"{site.project}-slurmrestd-1"], check=True, capture_output=True)
    with site.api_client() as api:
        back, _ = wait_until(lambda: api.get("/api/v1/jobs").status_code == 200, 30)
        assert back
    time.sleep(0)


def test_readyz_tells_anonymous_callers_booleans_and_foreign_hosts_get_nothing(converged):
    # Issue 12: no paths or upstream details without the token; DNS rebinding (a foreign Host) answers 400.
    anonymous = httpx.get(f"{converged.api_url}/readyz", timeout=30).json()
    assert all(set(check) == {"ok"} for check in anonymous["upstreams"].values()), anonymous
    with converged.api_client() as api:
        assert all(check.get("detail") for check in api.get("/readyz").json()["upstreams"].values())
        assert api.get("/api/v1/pods", headers={"Host": "evil.example"}).status_code == 400
    docs = httpx.get(f"{converged.api_url}/docs", timeout=10)
    assert docs.status_code == 200 and "https:" not in docs.text and "http:" not in docs.text
