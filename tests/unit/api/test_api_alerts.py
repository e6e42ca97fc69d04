"""GET /api/v1/alerts: the firing alerts, from Alertmanager's answers recorded from a real one.

tests/fixtures/api/alertmanager/ holds Alertmanager 0.25's answers to
/api/v2/alerts (tests/fixtures/api/record_alertmanager.py): four alerts, one
of them silenced. The fake answers the API's filtered question with the
filtered recording and anything else with the unfiltered one, so an API that
stopped asking for firing alerts only would list the silenced one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from gpuops_api.app import create_app
from gpuops_api.config import load_settings
from gpuops_api.services import Transports
from gpuops_api.upstreams.alertmanager import FIRING

from .conftest import Env, TestClient, make_env, write_config
from .fakes import FakeUpstream, load

RECORDED = load("alertmanager/alerts_all.json")["body"]
SILENCED = load("alertmanager/index.json")["silenced"]


class FakeAlertmanager(FakeUpstream):
    def handle(self, request: httpx.Request) -> httpx.Response:
        params = {key: values[-1] for key, values in parse_qs(request.url.query.decode()).items()}
        if request.url.path == "/api/v2/alerts" and request.method == "GET":
            recorded = load("alertmanager/alerts_firing.json" if params == FIRING else "alertmanager/alerts_all.json")
            return httpx.Response(recorded["status"], json=recorded["body"])
        if request.url.path == "/-/ready":
            return httpx.Response(200, text="OK")
        return httpx.Response(404, text="404 page not found\n")


@pytest.fixture
def alertmanager() -> FakeAlertmanager:
    return FakeAlertmanager()


def _client(env: Env, directory: Path, alertmanager: FakeAlertmanager | None, **overrides) -> TestClient:
    settings = load_settings(write_config(directory, **overrides))
    transports = Transports(prometheus=env.prometheus.transport(), slurmrestd=env.slurm.transport(),
                            cloud=env.cloud.transport(),
                            alertmanager=alertmanager.transport() if alertmanager else None)
    client = TestClient(create_app(settings, transports=transports, ssh=env.ssh, clock=env.clock),
                        raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {settings.token_file.read_text().strip()}"
    return client


@pytest.fixture
def am_client(tmp_path: Path, alertmanager: FakeAlertmanager) -> Iterator[TestClient]:
    env = make_env(tmp_path / "env")
    with _client(env, tmp_path / "api", alertmanager, alertmanager_url="http://127.0.0.1:9093") as client:
        yield client


def test_lists_the_firing_alerts_most_severe_first(am_client: TestClient, alertmanager: FakeAlertmanager) -> None:
    answer = am_client.get("/api/v1/alerts")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["configured"] is True
    firing = [raw for raw in RECORDED if not raw["status"]["silencedBy"]]
    assert len(body["alerts"]) == len(firing) == 3
    assert SILENCED not in {alert["name"] for alert in body["alerts"]}
    # critical before warning; among equals, the oldest first.
    assert [alert["severity"] for alert in body["alerts"]] == ["critical", "critical", "warning"]
    assert [alert["name"] for alert in body["alerts"]] == [
        "GpuopsSlurmNodeDown", "GpuopsGpuExporterDown", "GpuopsSpendAboveHourlyBudget"]
    down = body["alerts"][0]
    raw = next(raw for raw in RECORDED if raw["labels"]["alertname"] == "GpuopsSlurmNodeDown")
    assert down["summary"] == raw["annotations"]["summary"] and down["description"] == raw["annotations"]["description"]
    assert down["labels"] == raw["labels"] and down["starts_at"] == raw["startsAt"]
    assert down["fingerprint"] == raw["fingerprint"] and down["receivers"] == ["web-app"]
    (request,) = alertmanager.requests
    assert request.url.path == "/api/v2/alerts"
    assert dict(request.url.params) == FIRING


def test_needs_the_token(am_client: TestClient) -> None:
    answer = am_client.get("/api/v1/alerts", headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401


def test_alertmanager_down_is_a_503_naming_it(am_client: TestClient, alertmanager: FakeAlertmanager) -> None:
    alertmanager.down = True
    answer = am_client.get("/api/v1/alerts")
    assert answer.status_code == 503
    assert answer.json()["upstream"] == "alertmanager"
    assert "cannot reach alertmanager at http://127.0.0.1:9093" in answer.json()["detail"]


def test_alertmanager_failing_is_a_503(am_client: TestClient, alertmanager: FakeAlertmanager) -> None:
    alertmanager.status_override = 500
    answer = am_client.get("/api/v1/alerts")
    assert answer.status_code == 503 and answer.json()["upstream"] == "alertmanager"
    assert "HTTP 500" in answer.json()["detail"]


def test_without_alertmanager_no_alerts_and_says_so(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env")
    with _client(env, tmp_path / "api", None) as client:
        answer = client.get("/api/v1/alerts")
    assert answer.status_code == 200
    assert answer.json() == {"configured": False, "alerts": []}


def test_the_route_is_in_the_openapi_document(am_client: TestClient) -> None:
    paths = am_client.get("/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/alerts"]
