"""The web app in headless Chromium (Debian's, driven by playwright-core) against the deployed site.

The same scenarios as tests/browser (which proves the harness on a fake API)
run here against the real stack: real API, the service plane's slurmrestd,
Prometheus and pods. Screenshots and report.json go to $GPUOPS_TEST_ARTIFACTS
(default tests/artifacts/browser/site).
"""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.browser import harness

pytestmark = pytest.mark.integration

ARTIFACTS = harness.ARTIFACTS / "site"


@pytest.fixture(scope="module")
def report(converged):
    site = converged
    harness.preflight()
    # slurmrestd's outage: its container on the service plane stops, then starts again.
    stop_restd = ["docker", "stop", "--time", "2", f"{site.project}-slurmrestd-1"]
    start_restd = ["docker", "start", f"{site.project}-slurmrestd-1"]
    scenarios = [
        {"kind": "no_token", "name": "no_token"},
        {"kind": "overview", "name": "overview",
         "expect": {"pods": 2, "gpus": 2, "podNames": [f"{site.prefix}-0", f"{site.prefix}-1"], "grafanaFleet": None}},
        {"kind": "submit_job", "name": "hello_job", "gpusPerNode": 1, "expect": {"state": "COMPLETED", "exitCode": 0}},
        {"kind": "submit_job", "name": "failing_job", "jobName": "browser-exit3",
         "script": "#!/bin/bash\necho about to fail\nsleep 2\nexit 3\n",
         "expect": {"state": "FAILED", "exitCode": 3, "outputContains": ["about to fail"]}},
        {"kind": "outage", "name": "slurmrestd_outage", "page": "/jobs", "upstream": "slurmrestd",
         "break": {"cmd": stop_restd, "timeoutMs": 120_000}, "restore": {"cmd": start_restd, "timeoutMs": 120_000}},
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result = harness.run_scenarios({"webUrl": site.web_url, "tokenFile": str(site.stack_dir / "api" / "token"),
                                    "scenarios": scenarios, "artifactsDir": str(ARTIFACTS)})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.json").write_text(json.dumps(result, indent=2))
    return {r["name"]: r for r in result["results"]}


@pytest.mark.parametrize("name", ["no_token", "overview", "hello_job", "failing_job", "slurmrestd_outage"])
def test_scenario_on_the_live_stack(report, name):
    result = report[name]
    assert result["ok"], f"{name}: {result['error']}\nscreenshots: {result['screenshots']}"
    assert result["screenshots"] and all(os.path.getsize(p) > 1000 for p in result["screenshots"])


def test_the_jobs_the_browser_submitted_are_slurms(report, converged):
    with converged.api_client() as api:
        hello = api.get(f"/api/v1/jobs/{report['hello_job']['details']['jobId']}").json()
        failing = api.get(f"/api/v1/jobs/{report['failing_job']['details']['jobId']}").json()
        assert (hello["state"], hello["exit_code"], hello["gpus"]) == ("COMPLETED", 0, 1)
        assert (failing["state"], failing["exit_code"]) == ("FAILED", 3)
        # The outage scenario started slurmrestd again: everything answers again.
        assert api.get("/api/v1/jobs").status_code == 200
    assert httpx.get(f"{converged.api_url}/readyz", timeout=30).status_code == 200
