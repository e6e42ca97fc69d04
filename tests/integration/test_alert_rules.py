"""The observability role's alert rules under `promtool test rules` (Debian's promtool, offline Prometheus image).

tests/fixtures/observability/alert_rules_test.yml gives every rule inputs
that fire it and inputs that do not, and the exact labels and annotations of
the alerts. The rules are rendered from the role's template as the role
writes them, with both spend budgets set. A budget the inputs stay under
makes promtool fail: the tests can fail.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from tests.integration.helpers import REPO, docker_available, run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (scripts/setup.sh)"),
]

ROLE = REPO / "collections/ansible_collections/gpuops/platform/roles/observability"
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
TESTS = REPO / "tests/fixtures/observability/alert_rules_test.yml"
BUDGETS = {"observability_budget_usd_per_hour": 2.5, "observability_budget_usd_per_day": 40}


def render_rules(**overrides) -> str:
    variables = {name: value for name, value in DEFAULTS.items() if not (isinstance(value, str) and "{{" in value)}
    variables.update(ansible_managed="Ansible managed", **overrides)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((ROLE / "templates/prometheus/gpuops-alerts.yml.j2").read_text()).render(**variables)


@pytest.fixture(scope="module")
def promtool_image() -> str:
    """The offline Prometheus image the role builds, built if missing (same tag: a digest of its Dockerfile as
    Ansible's file lookup reads it, trailing whitespace stripped)."""
    context = ROLE / "files/prometheus-offline"
    tag = f"{DEFAULTS['observability_prometheus_offline_image']}:bookworm-" \
          f"{hashlib.sha256((context / 'Dockerfile').read_text().rstrip().encode()).hexdigest()[:12]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode != 0:
        run(["docker", "build", "-q", "-t", tag, "--build-arg",
             f"BASE_IMAGE={DEFAULTS['observability_prometheus_offline_base_image']}",
             "--label", "io.gpuops.component=prometheus-offline", str(context)])
    return tag


def promtool_test(image: str, directory: Path, rules: str) -> subprocess.CompletedProcess:
    (directory / "gpuops-alerts.yml").write_text(rules)
    shutil.copy(TESTS, directory / TESTS.name)
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "0:0", "-v", f"{directory}:/rules:ro", "-w", "/rules",
         "--entrypoint", "promtool", image, "test", "rules", TESTS.name],
        capture_output=True, text=True, check=False, timeout=120)


def test_every_rule_fires_on_its_inputs_and_only_on_them(promtool_image, tmp_path):
    result = promtool_test(promtool_image, tmp_path, render_rules(**BUDGETS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_is_tested():
    rules = yaml.safe_load(render_rules(**BUDGETS))
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    fired = {alert["alertname"] for test in tests for alert in test["alert_rule_test"] if alert["exp_alerts"]}
    quiet = {alert["alertname"] for test in tests for alert in test["alert_rule_test"] if not alert["exp_alerts"]}
    assert names == fired == quiet


def test_a_budget_above_the_spend_keeps_the_alerts_quiet(promtool_image, tmp_path):
    result = promtool_test(promtool_image, tmp_path, render_rules(observability_budget_usd_per_hour=3.5,
                                                                  observability_budget_usd_per_day=50))
    assert result.returncode != 0
    report = result.stdout + result.stderr  # promtool prints failures on stderr
    assert "alertname: GpuopsSpendAboveHourlyBudget" in report and "alertname: GpuopsSpendAboveDailyBudget" in report
    assert "alertname: GpuopsSlurmNodeDown" not in report


def test_budgets_at_zero_leave_the_spend_alerts_out():
    rules = yaml.safe_load(render_rules())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert not {"GpuopsSpendAboveHourlyBudget", "GpuopsSpendAboveDailyBudget"} & names
    assert {"GpuopsSlurmNodeDown", "GpuopsSlurmNodeDrained", "GpuopsGpuExporterDown", "GpuopsGpuIdle"} <= names
