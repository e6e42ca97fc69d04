"""The alert rules of gpuops.platform.observability, rendered from the role's template.

The rules are valid YAML in Prometheus' rule-file layout, hold the expected
alerts with valid PromQL, and follow the role's variables. promtool checks
the deployed file in tests/integration/test_stack.py (and the role checks it
before every deployment).
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml

from test_observability_promql import metric_names, value_type

ROLE = Path(__file__).resolve().parents[2] / "collections/ansible_collections/gpuops/platform/roles/observability"
TEMPLATE = ROLE / "templates" / "prometheus" / "gpuops-alerts.yml.j2"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

EXPECTED = {
    "GpuopsGpuExporterDown": {"metric": "up", "for": "1m", "severity": "critical"},
    "GpuopsGpuTemperatureHigh": {"metric": "DCGM_FI_DEV_GPU_TEMP", "for": "5m", "severity": "warning"},
    "GpuopsGpuXidError": {"metric": "DCGM_FI_DEV_XID_ERRORS", "for": None, "severity": "critical"},
    "GpuopsGpuUncorrectableRemappedRows": {"metric": "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "for": None,
                                           "severity": "critical"},
    "GpuopsGpuIdle": {"metric": "DCGM_FI_DEV_GPU_UTIL", "for": None, "severity": "info"},
    "GpuopsSlurmNodeDown": {"metric": "gpuops_slurm_nodes", "for": "2m", "severity": "critical"},
    "GpuopsSlurmNodeDrained": {"metric": "gpuops_slurm_nodes", "for": "5m", "severity": "warning"},
    "GpuopsSlurmUnreachable": {"metric": "gpuops_slurm_up", "for": "2m", "severity": "critical"},
    "GpuopsCloudUnreachable": {"metric": "gpuops_cloud_up", "for": "5m", "severity": "warning"},
    "GpuopsApiDown": {"metric": "up", "for": "2m", "severity": "warning"},
    "GpuopsSlurmJobRequeuedAfterNodeFailure": {"metric": "gpuops_slurm_job_requeues", "for": None,
                                               "severity": "warning"},
}
#: Only with a budget (observability_budget_usd_per_hour / _per_day above 0).
BUDGET_ALERTS = {
    "GpuopsSpendAboveHourlyBudget": {"metric": "gpuops_cost_usd_per_hour", "for": "5m", "severity": "warning"},
    "GpuopsSpendAboveDailyBudget": {"metric": "gpuops_cost_usd_per_hour", "for": None, "severity": "warning"},
}


def render(**overrides) -> dict:
    """The rules file as the role writes it, from the role's defaults plus overrides."""
    variables = {name: value for name, value in DEFAULTS.items() if not (isinstance(value, str) and "{{" in value)}
    variables.update(ansible_managed="Ansible managed", **overrides)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return yaml.safe_load(env.from_string(TEMPLATE.read_text()).render(**variables))


def rules(document: dict) -> dict[str, dict]:
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def test_rules_file_layout():
    document = render()
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    for group in document["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_expected_alerts_are_there():
    found = rules(render())
    assert set(found) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        rule = found[name]
        assert expected["metric"] in metric_names(rule["expr"]), name
        assert rule.get("for") == expected["for"], name
        assert rule["labels"]["severity"] == expected["severity"], name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_alert_expression_is_valid_promql(name):
    assert value_type(rules(render())[name]["expr"]) == "vector"


def test_alert_expressions_follow_the_contract():
    found = rules(render())
    assert found["GpuopsGpuExporterDown"]["expr"] == 'up{job="gpu"} == 0'
    assert found["GpuopsGpuTemperatureHigh"]["expr"] == "DCGM_FI_DEV_GPU_TEMP > 85"
    assert re.search(r"(changes|increase)\(DCGM_FI_DEV_XID_ERRORS\[\w+\]\) > 0", found["GpuopsGpuXidError"]["expr"])
    assert found["GpuopsGpuUncorrectableRemappedRows"]["expr"] == "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS > 0"
    assert "avg_over_time(DCGM_FI_DEV_GPU_UTIL[30m]) < 5" in found["GpuopsGpuIdle"]["expr"]


def test_thresholds_follow_the_variables():
    found = rules(render(observability_idle_minutes=45, observability_idle_util_percent=10,
                         observability_gpu_temp_threshold=80))
    assert "avg_over_time(DCGM_FI_DEV_GPU_UTIL[45m]) < 10" in found["GpuopsGpuIdle"]["expr"]
    assert "offset 45m" in found["GpuopsGpuIdle"]["expr"]
    assert found["GpuopsGpuTemperatureHigh"]["expr"] == "DCGM_FI_DEV_GPU_TEMP > 80"
    assert "80" in found["GpuopsGpuTemperatureHigh"]["annotations"]["description"]


def test_annotations_keep_prometheus_templates():
    """Prometheus' own {{ $labels.x }} templates survive Ansible's templating."""
    down = rules(render())["GpuopsGpuExporterDown"]["annotations"]
    assert "{{ $labels.pod }}" in down["summary"]
    assert "{{ $labels.instance }}" in down["description"]


def test_budget_alerts_follow_the_budgets():
    assert not set(BUDGET_ALERTS) & set(rules(render()))
    found = rules(render(observability_budget_usd_per_hour=2.5, observability_budget_usd_per_day=40))
    for name, expected in BUDGET_ALERTS.items():
        assert expected["metric"] in metric_names(found[name]["expr"]), name
        assert found[name].get("for") == expected["for"], name
        assert value_type(found[name]["expr"]) == "vector"
    assert found["GpuopsSpendAboveHourlyBudget"]["expr"] == "gpuops_cost_usd_per_hour > 2.5"
    assert found["GpuopsSpendAboveDailyBudget"]["expr"] == "avg_over_time(gpuops_cost_usd_per_hour[1d]) * 24 > 40.0"
    only_daily = rules(render(observability_budget_usd_per_day=40))
    assert "GpuopsSpendAboveDailyBudget" in only_daily and "GpuopsSpendAboveHourlyBudget" not in only_daily


def test_node_alerts_read_the_apis_node_states():
    found = rules(render())
    assert found["GpuopsSlurmNodeDown"]["expr"] == 'gpuops_slurm_nodes{state="down"} > 0'
    assert found["GpuopsSlurmNodeDrained"]["expr"] == 'gpuops_slurm_nodes{state=~"drained|draining"} > 0'
