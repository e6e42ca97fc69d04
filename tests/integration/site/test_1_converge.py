"""site.yml on a fresh local cloud: everything up in one command, then a second run changes nothing.

Nothing but the smoke stage, that is: it submits a job on every run and
reports it as a change, so the idempotence check leaves it out by its tag
(Site.site_again: --skip-tags smoke).
"""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest

from tests.integration.helpers import changed_tasks, recap

pytestmark = pytest.mark.integration


def test_first_run_succeeds_on_every_host(converged):
    hosts = recap(converged.first_run.stdout)
    assert {"localhost", f"{converged.prefix}-0", f"{converged.prefix}-1"} <= set(hosts)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in hosts.values()), hosts


def test_every_pod_runs_the_stand_in_of_runpods_pytorch_image(converged):
    """The site rents RunPod's PyTorch image; the local cloud runs its stand-in for it, never the plain pod image,
    so what converged here converged on the traits of RunPod's image."""
    pods = converged.pod_list()
    assert len(pods) == 2
    for pod in pods:
        assert pod["image"].startswith("runpod/pytorch:"), pod
        # The local cloud labels each pod's container with the pod's id.
        images = subprocess.run(
            ["docker", "ps", "-a", "--filter", "label=io.gpuops.localcloud=1",
             "--filter", f"label=io.gpuops.pod-id={pod['id']}", "--format", "{{ .Image }}"],
            capture_output=True, text=True, check=True).stdout.split()
        assert images == ["gpuops/runpod-pytorch-standin:latest"], (pod["name"], images)


def test_smoke_job_completed_and_every_pod_reports_gpu_metrics(converged):
    out = converged.first_run.stdout
    assert re.search(r"Smoke job \d+ COMPLETED on ", out), out[-4000:]
    # The submission says what it did: a change (a new job), once, on the one host that submits (the controller).
    submitted = [task for task in changed_tasks(out) if task.startswith("Submit the hello job and wait for it: ")]
    assert len(submitted) == 1, changed_tasks(out)
    pods = sorted(pod["name"] for pod in converged.pod_list())
    for pod in pods:
        assert converged.query(f'DCGM_FI_DEV_GPU_UTIL{{pod="{pod}"}}'), pod


def test_summary_names_urls_credentials_and_next_commands(converged):
    out = converged.first_run.stdout
    assert f"Web app:     {converged.web_url}/" in out
    assert f"API:         {converged.api_url}/docs" in out
    assert f"Prometheus:  http://127.0.0.1:{converged.prometheus_port}/" in out
    assert "Grafana:" in out
    assert f"{converged.stack_dir}/api/token" in out
    assert "submit_job.yml -e script=examples/hello.sh" in out
    assert "teardown.yml" in out


def test_the_token_file_is_shown_never_the_token(converged):
    # Deploy output lands in AWX and CI logs: the file and how to open the web app with it, never the value.
    token = converged.token
    assert len(token) >= 32
    out = converged.first_run.stdout + converged.first_run.stderr
    assert token not in out and token not in "".join(out.split())
    flat = " ".join(out.split())
    token_file = converged.stack_dir / "api" / "token"
    assert f"A new API token was generated: {token_file} (mode 0600" in flat
    assert "#token=" not in flat and "$(cat" not in flat
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_every_url_answers(converged):
    assert httpx.get(f"http://127.0.0.1:{converged.prometheus_port}/-/ready", timeout=10).status_code == 200
    assert httpx.get(f"{converged.api_url}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{converged.api_url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert all(upstream["ok"] for upstream in ready.json()["upstreams"].values()), ready.json()
    page = httpx.get(f"{converged.web_url}/", timeout=10)
    assert page.status_code == 200 and '<div id="root">' in page.text
    config = httpx.get(f"{converged.web_url}/config.js", timeout=10)
    assert config.status_code == 200 and f'"apiBase": "{converged.api_url}"' in config.text
    with converged.api_client() as api:
        assert api.get("/api/v1/pods").status_code == 200


def test_no_service_of_the_service_plane_runs_as_root(converged):
    """Every container of the deployment's Compose project: every process in it runs as a user other than root,
    with every capability dropped but those its entry point needs to drop to that user, and no new privileges.
    The API and the web app are started as their own user (the API's files are that user's, even though root
    deployed), Slurm's services drop to theirs in their entry point."""
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={converged.project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    services = {}
    for cid in ids:
        info = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True,
                                         check=True).stdout)[0]
        service = info["Config"]["Labels"]["com.docker.compose.service"]
        top = subprocess.run(["docker", "top", cid, "-eo", "pid,uid,comm"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[1:]
        services[service] = [line.split() for line in top]
        assert top and all(uid != "0" for _pid, uid, _comm in services[service]), (service, top)
        assert info["HostConfig"]["CapDrop"] == ["ALL"], service
        assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"], service
        # A read-only root for all but Grafana, which writes outside its data volume.
        assert info["HostConfig"]["ReadonlyRootfs"] is (service != "grafana"), service
        if service in ("api", "web"):
            assert info["Config"]["User"].split(":")[0] not in ("", "0", "root"), (service, info["Config"]["User"])
            assert not info["HostConfig"]["CapAdd"], service
    assert {"api", "web", "slurmctld", "slurmdbd", "slurmrestd", "munge", "prometheus"} <= set(services), services
    # The API's user owns its token (root deployed it): the file users read stays 0600.
    token = converged.stack_dir / "api" / "token"
    assert token.stat().st_uid != 0 and token.stat().st_mode & 0o777 == 0o600


def test_second_run_changes_nothing_on_any_host(converged):
    result = converged.site_again()
    hosts = recap(result.stdout)
    assert hosts and all(counts["changed"] == 0 for counts in hosts.values()), (hosts, changed_tasks(result.stdout))
    # Every other stage ran on every pod; only the smoke stage was left out.
    pods = {f"{converged.prefix}-0", f"{converged.prefix}-1"}
    assert pods <= set(hosts) and all(hosts[pod]["ok"] > 0 for pod in pods), hosts
    assert "TASK [Submit the hello job" not in result.stdout
    assert converged.token not in result.stdout + result.stderr


def test_check_mode_on_the_converged_site_changes_nothing(converged):
    # Every stage, smoke included: in check mode the smoke stage submits no job (its task is skipped).
    result = converged.site("--check")
    hosts = recap(result.stdout)
    assert hosts and all(counts["changed"] == 0 and counts["failed"] == 0 for counts in hosts.values()), (
        hosts, changed_tasks(result.stdout))


def test_one_stage_by_tag(converged):
    result = converged.site("--tags", "tunnel")
    assert "TASK [Keep the pod's tunnel open]" in result.stdout
    # Other stages run only their read-only checks (argument specs, facts; tagged always).
    for task in ("gpuops.platform.provision : Apply terraform/runpod", "gpuops.platform.slurm : Write slurm.conf",
                 "gpuops.platform.observability : Start the Compose project", "gpuops.platform.app : Build the images"):
        assert f"TASK [{task}" not in result.stdout, task
    assert "Submit the hello job" not in result.stdout
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values())


def test_submit_job_on_the_site(converged):
    result = converged.playbook("./submit_job.yml", "-e", "script=examples/hello.sh", "-e", "gpus_per_node=1")
    job_id = re.search(r"Submitted batch job (\d+)", result.stdout).group(1)
    out = (converged.results_dir / job_id / f"slurm-{job_id}.out").read_text()
    assert "hello from" in out and "CUDA_VISIBLE_DEVICES=0" in out
    # The result says what the job cost: its GPU-hours at the price its pod's GPUs had when it was allocated.
    said = " ".join(result.stdout.split())
    cost = re.search(r"COMPLETED with exit code 0 \(cost ([0-9.]+) USD: 1 GPU\(s\) for (\d+) s at ([0-9.]+) USD per "
                     r"GPU-hour\)", said)
    assert cost, said[-2000:]
    prices = {round(pod["cost"] / pod["gpu"]["count"], 6) for pod in converged.pod_list()}
    assert round(float(cost.group(3)), 6) in prices, (cost.group(0), prices)
    assert float(cost.group(1)) == pytest.approx(float(cost.group(3)) * int(cost.group(2)) / 3600, abs=1e-4)
