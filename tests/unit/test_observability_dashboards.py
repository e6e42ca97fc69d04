"""The Grafana dashboards of gpuops.platform.observability, without Grafana.

Every dashboard is well-formed JSON with the variables its panels use, and
every panel query is valid PromQL once the variables are substituted. The
GPU fleet dashboard keeps the queries and variables of NVIDIA's DCGM
exporter dashboard (grafana.com 12239), so that one, imported unmodified,
works on the same Prometheus. tests/integration/test_stack.py runs every
query on a live Prometheus.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_observability_promql import GRAFANA_BUILTINS, metric_names, substitute, value_type

ROLE = Path(__file__).resolve().parents[2] / "collections/ansible_collections/gpuops/platform/roles/observability"
DASHBOARDS = ROLE / "files" / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))

# The variables of NVIDIA's DCGM exporter dashboard and the queries its panels make.
DCGM_VARIABLES = {
    "instance": "label_values(DCGM_FI_DEV_GPU_TEMP, instance)",
    "gpu": "label_values(DCGM_FI_DEV_GPU_TEMP, gpu)",
}
DCGM_SELECTOR = '{instance=~"${instance}", gpu=~"${gpu}"}'
DCGM_METRICS = [
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
]
SLURM_METRICS = ["gpuops_slurm_nodes", "gpuops_slurm_jobs", "gpuops_slurm_gpus_allocated", "gpuops_slurm_gpus_total",
                 "gpuops_slurm_job_cost_usd", "gpuops_slurm_spend_usd"]


def load(name: str) -> dict:
    return json.loads((DASHBOARDS / f"{name}.json").read_text())


def panels(dashboard: dict) -> list[dict]:
    """Every panel, those inside rows included, rows themselves excluded."""
    found = []
    for panel in dashboard["panels"]:
        found.extend(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def exprs(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def variables(dashboard: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def sample_values(dashboard: dict) -> dict[str, str]:
    """A value for every variable, as Grafana would substitute it."""
    return {name: ("gpuops-prometheus" if variable["type"] == "datasource" else "x")
            for name, variable in variables(dashboard).items()}


def test_the_three_dashboards_are_there():
    assert [path.stem for path in FILES] == ["gpuops-gpu-fleet", "gpuops-gpu-jobs", "gpuops-slurm"]


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_dashboard_is_well_formed(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem, "the uid is the file name, so links stay stable"
    assert dashboard["title"].startswith("gpuops / ")
    assert "gpuops" in dashboard["tags"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, panel["title"]
        assert panel["title"], "every panel has a title"
        assert panel["targets"], f"{panel['title']}: no query"
        # The provisioned datasource is reached through the $datasource variable.
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_every_panel_query_is_valid_promql(path):
    dashboard = json.loads(path.read_text())
    values = sample_values(dashboard)
    for expr in exprs(dashboard):
        concrete = substitute(expr, values)
        assert "$" not in concrete, f"a variable is left in {concrete!r}"
        assert value_type(concrete) in ("vector", "scalar"), f"{expr!r} is not an instant query"


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_every_variable_used_is_defined(path):
    dashboard = json.loads(path.read_text())
    defined = set(variables(dashboard)) | set(GRAFANA_BUILTINS)
    text = json.dumps([panel.get("targets") for panel in panels(dashboard)])
    used = set(re.findall(r"\$\{?(\w+)", text))
    assert used <= defined, f"undefined variables {used - defined}"
    for name, variable in variables(dashboard).items():
        if variable["type"] == "query":
            value_type(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", variable["query"]))
            assert variable["definition"] == variable["query"]


def test_fleet_dashboard_keeps_the_dcgm_dashboard_queries():
    dashboard = load("gpuops-gpu-fleet")
    defined = variables(dashboard)
    for name, query in DCGM_VARIABLES.items():
        assert defined[name]["type"] == "query"
        assert defined[name]["query"] == query
        assert defined[name]["includeAll"] and defined[name]["multi"]
    queries = exprs(dashboard)
    for metric in DCGM_METRICS:
        assert any(metric + DCGM_SELECTOR in expr for expr in queries), f"no panel queries {metric}{DCGM_SELECTOR}"
    # The exact queries of the DCGM exporter dashboard's main panels.
    for expected in ["DCGM_FI_DEV_GPU_TEMP" + DCGM_SELECTOR, "DCGM_FI_DEV_POWER_USAGE" + DCGM_SELECTOR,
                     "DCGM_FI_DEV_GPU_UTIL" + DCGM_SELECTOR, "DCGM_FI_DEV_FB_USED" + DCGM_SELECTOR,
                     "DCGM_FI_DEV_SM_CLOCK" + DCGM_SELECTOR + " * 1000000"]:
        assert expected in queries


def test_jobs_dashboard_selects_by_hpc_job():
    dashboard = load("gpuops-gpu-jobs")
    job = variables(dashboard)["hpc_job"]
    assert job["query"] == "label_values(DCGM_FI_DEV_GPU_UTIL, hpc_job)"
    # "All" must mean every job, not every GPU: no ".*" that also matches GPUs without a job.
    assert job["allValue"] in (None, ".+")
    for expr in exprs(dashboard):
        assert 'hpc_job=~"${hpc_job}"' in expr, f"{expr!r} ignores the selected job"


def test_slurm_dashboard_uses_the_documented_metrics():
    dashboard = load("gpuops-slurm")
    queries = " ".join(exprs(dashboard))
    values = sample_values(dashboard)
    selected = set().union(*(metric_names(substitute(expr, values)) for expr in exprs(dashboard)))
    for metric in SLURM_METRICS:
        assert metric in selected, f"no panel selects {metric}"
    readme = (ROLE / "README.md").read_text()
    for metric in SLURM_METRICS:
        assert f"`{metric}" in readme, f"{metric} is not documented in the role's README"
    for state in ("idle", "running", "pending"):
        assert f'state="{state}"' in queries


def test_slurm_dashboard_shows_the_spend_per_day_from_the_accounting():
    """One bar per UTC day: the API's gpuops_slurm_spend_usd (GET /api/v1/spend's days), summed over users, read
    now (an instant query: the series carry their day, so the dashboard's time range must not re-bucket them)."""
    [panel] = [p for p in panels(load("gpuops-slurm")) if p["title"].startswith("Spend per day")]
    assert panel["type"] == "barchart"
    [target] = panel["targets"]
    assert value_type(target["expr"]) == "vector"
    assert target["expr"] == "sum by (day) (gpuops_slurm_spend_usd)"
    assert target["instant"] is True and target["range"] is False and target["format"] == "table"
    # The bars are the days (the `day` label), the values USD; Grafana's Time column of an instant table is hidden.
    assert panel["options"]["xField"] == "day"
    assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    [organize] = [t for t in panel.get("transformations", []) if t["id"] == "organize"]
    assert organize["options"]["excludeByName"] == {"Time": True}
