"""The browser harness against the web frontend served by its nginx image, with
a labelled fake of the gpuops API (tests/browser/fake_api.py) behind it.

This proves the frontend and the harness; the same scenarios run against the
real deployed stack in the stack's own tests. Needs Docker, Debian's chromium,
node >= 20 and `npm ci --prefix tests/browser`.

Environment: GPUOPS_TEST_ARTIFACTS (screenshots; default tests/artifacts/browser),
GPUOPS_WEB_IMAGE (use this image instead of building gpuops/web:browser-test),
GPUOPS_BROWSER_WEB=static (serve app/web/dist from Python instead of nginx).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.browser import harness
from tests.integration.helpers import docker_available, free_port

pytestmark = pytest.mark.integration

GRAFANA = "http://127.0.0.1:3999"
IMAGE_TAG = "gpuops/web:browser-test"


@dataclass
class Stack:
    web_url: str
    api_url: str
    token: str
    token_file: Path
    web_container: str | None


def outage_action(api_url: str, token: str, upstream: str, down: bool) -> dict:
    return {
        "http": {
            "url": f"{api_url}/_fake/outage",
            "headers": {"Authorization": f"Bearer {token}"},
            "body": {"upstream": upstream, "down": down},
        }
    }


def scenarios(stack: Stack) -> list[dict]:
    return [
        {"kind": "no_token", "name": "no_token"},
        {"kind": "bad_token", "name": "bad_token"},
        {
            "kind": "overview",
            "name": "overview",
            "expect": {
                "pods": 2,
                "gpus": 2,
                "podNames": ["gpuops-controller", "gpuops-compute-1"],
                "grafanaFleet": f"{GRAFANA}/d/gpuops-gpu-fleet",
            },
        },
        {"kind": "validation", "name": "validation"},
        {
            "kind": "rejected_job",
            "name": "rejected_job",
            "partition": "nope",
            "expect": {"errorContains": ["invalid partition", "HTTP 400"]},
        },
        {"kind": "submit_job", "name": "hello_job", "gpusPerNode": 1, "expect": {"state": "COMPLETED", "exitCode": 0}},
        {
            "kind": "submit_job",
            "name": "failing_job",
            "jobName": "browser-exit3",
            "script": "#!/bin/bash\necho about to fail\nsleep 2\nexit 3\n",
            "expect": {"state": "FAILED", "exitCode": 3, "outputContains": ["about to fail"]},
        },
        {"kind": "cancel_job", "name": "cancel_job"},
        {
            "kind": "outage",
            "name": "slurmrestd_outage",
            "page": "/jobs",
            "upstream": "slurmrestd",
            "break": outage_action(stack.api_url, stack.token, "slurmrestd", True),
            "restore": outage_action(stack.api_url, stack.token, "slurmrestd", False),
        },
        {
            "kind": "outage",
            "name": "prometheus_outage",
            "page": "/",
            "upstream": "prometheus",
            "break": outage_action(stack.api_url, stack.token, "prometheus", True),
            "restore": outage_action(stack.api_url, stack.token, "prometheus", False),
        },
        {
            "kind": "outage",
            "name": "api_outage",
            "page": "/",
            "upstream": "gpuops-api",
            "break": outage_action(stack.api_url, stack.token, "api", True),
            "restore": outage_action(stack.api_url, stack.token, "api", False),
        },
    ]


SCENARIO_NAMES = [
    "no_token",
    "bad_token",
    "overview",
    "validation",
    "rejected_job",
    "hello_job",
    "failing_job",
    "cancel_job",
    "slurmrestd_outage",
    "prometheus_outage",
    "api_outage",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    harness.preflight()
    mode = os.environ.get("GPUOPS_BROWSER_WEB", "nginx")
    if mode == "nginx" and not docker_available():
        pytest.fail("Docker does not answer: start it (scripts/setup.sh docker) or set GPUOPS_BROWSER_WEB=static")
    tmp = tmp_path_factory.mktemp("browser")
    token = secrets.token_urlsafe(32)
    token_file = tmp / "token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    api_port, web_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    web_origin = f"http://127.0.0.1:{web_port}"

    fake_log = (tmp / "fake_api.log").open("w")
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.browser.fake_api",
            "--port",
            str(api_port),
            "--token-file",
            str(token_file),
            "--cors-origin",
            web_origin,
            "--grafana-url",
            GRAFANA,
        ],
        cwd=harness.REPO,
        stdout=fake_log,
        stderr=subprocess.STDOUT,
    )
    try:
        harness.wait_http(f"{api_url}/healthz", what="the fake API")
        config_js = harness.write_config_js(tmp, api_url)
        if mode == "static":
            with harness.static_web(harness.ensure_dist(), web_port, config_js) as url:
                yield Stack(url, api_url, token, token_file, None)
        else:
            image = os.environ.get("GPUOPS_WEB_IMAGE") or IMAGE_TAG
            if not os.environ.get("GPUOPS_WEB_IMAGE"):
                harness.build_web_image(IMAGE_TAG)
            name = f"gpuops-webtest-{secrets.token_hex(4)}"
            with harness.web_container(image, name, web_port, api_url, config_js) as url:
                stack = Stack(url, api_url, token, token_file, name)
                yield stack
                (tmp / "web.log").write_text(harness.container_logs(name), encoding="utf-8")
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        fake_log.close()


@pytest.fixture(scope="module")
def report(stack: Stack) -> dict:
    cfg = {"webUrl": stack.web_url, "tokenFile": str(stack.token_file), "scenarios": scenarios(stack)}
    result = harness.run_scenarios(cfg)
    harness.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (harness.ARTIFACTS / "report.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return {r["name"]: r for r in result["results"]}


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.token}"}, timeout=10) as client:
        yield client


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario(report: dict, name: str) -> None:
    result = report[name]
    assert result["ok"], f"{name}: {result['error']}\nscreenshots: {result['screenshots']}"
    assert result["screenshots"], f"{name} saved no screenshot"
    for path in result["screenshots"]:
        assert Path(path).stat().st_size > 1000, f"{path} is empty"


def test_ui_submitted_job_reached_the_api(report: dict, api: httpx.Client) -> None:
    details = report["hello_job"]["details"]
    job = api.get(f"/api/v1/jobs/{details['jobId']}").json()
    assert job["name"] == "browser-hello_job"
    assert job["gpus"] == 1
    assert job["partition"] == "gpu"
    assert job["state"] == "COMPLETED"
    assert details["statesSeen"][-1] == "COMPLETED"
    assert "RUNNING" in details["statesSeen"], "the job page never showed RUNNING (no live refresh?)"


def test_ui_failing_job_matches_the_api(report: dict, api: httpx.Client) -> None:
    details = report["failing_job"]["details"]
    job = api.get(f"/api/v1/jobs/{details['jobId']}").json()
    assert (job["name"], job["state"], job["exit_code"]) == ("browser-exit3", "FAILED", 3)
    assert details["exitCode"] == "3"


def test_ui_cancel_reached_the_api(report: dict, api: httpx.Client) -> None:
    job = api.get(f"/api/v1/jobs/{report['cancel_job']['details']['jobId']}").json()
    assert job["state"] == "CANCELLED"


def test_no_outage_left_behind(report: dict, api: httpx.Client) -> None:
    # Both outage scenarios restored their upstream: the API answers again.
    assert api.get("/api/v1/jobs").status_code == 200
    assert api.get("/api/v1/gpus").status_code == 200
    assert api.get("/api/v1/pods").status_code == 200


def test_web_access_log_has_no_token_or_query(stack: Stack, report: dict) -> None:
    if stack.web_container is None:
        pytest.skip("only the nginx image writes an access log")
    logs = harness.container_logs(stack.web_container)
    assert stack.token not in logs
    requests = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert requests, "nginx logged no request"
    assert all("?" not in r["path"] for r in requests), "a query string reached the access log"
    assert any(r["path"] == "/jobs" for r in requests), "the SPA route /jobs was not served by nginx"
