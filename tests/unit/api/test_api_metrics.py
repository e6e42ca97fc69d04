"""/metrics: gpuops_slurm_* from the recorded slurmrestd replies, in Prometheus' text format."""

from __future__ import annotations

import pytest
from gpuops_api.slurmdata import parse_node
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Env, TestClient
from .fakes import load


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    return families


def test_busy_cluster(client: TestClient, env: Env) -> None:
    metrics = scrape(client)
    assert metrics["gpuops_slurm_up"] == {(): 1.0}
    nodes = {labels[0][1]: value for labels, value in metrics["gpuops_slurm_nodes"].items()}
    assert nodes == {"idle": 1, "mixed": 1, "allocated": 0, "down": 0, "drained": 0, "draining": 0}
    jobs = {labels[0][1]: value for labels, value in metrics["gpuops_slurm_jobs"].items()}
    states = [job["job_state"].lower() for job in env.slurm.jobs.values()]
    assert jobs == {**{s: 0 for s in ("pending", "running", "completed", "failed", "cancelled", "timeout")},
                    **{s: states.count(s) for s in set(states)}}
    assert jobs["running"] == 1 and jobs["pending"] == 1
    assert metrics["gpuops_slurm_pending_jobs"] == {(("reason", "Resources"),): 1.0}
    assert metrics["gpuops_slurm_gpus_allocated"] == {(): 1.0}
    assert metrics["gpuops_slurm_gpus_total"] == {(): 4.0}


def test_drained_and_draining_nodes(client: TestClient, env: Env) -> None:
    env.slurm.nodes_fixture = "slurm/nodes_drain.json"
    nodes = {labels[0][1]: value for labels, value in scrape(client)["gpuops_slurm_nodes"].items()}
    assert (nodes["drained"], nodes["draining"], nodes["idle"], nodes["mixed"]) == (1, 1, 0, 0)


def test_idle_cluster(client: TestClient, env: Env) -> None:
    env.slurm.nodes_fixture = "slurm/nodes_idle.json"
    env.slurm.use_final_jobs()
    metrics = scrape(client)
    assert metrics["gpuops_slurm_gpus_allocated"] == {(): 0.0}
    assert metrics["gpuops_slurm_pending_jobs"] == {}


@pytest.mark.parametrize(("state", "flags", "expected"), [
    ("idle", [], "idle"), ("mixed", [], "mixed"), ("allocated", [], "allocated"), ("down", [], "down"),
    ("idle", ["DRAIN"], "drained"), ("mixed", ["DRAIN"], "draining"), ("allocated", ["DRAIN"], "draining"),
    ("down", ["DRAIN"], "down"), ("IDLE", ["NOT_RESPONDING"], "idle"), ("future", [], "future"),
])
def test_node_states(state: str, flags: list[str], expected: str) -> None:
    raw = {**load("slurm/nodes_idle.json")["body"]["nodes"][0], "state": state, "state_flags": flags}
    assert parse_node(raw).state == expected


def test_job_cost_series_only_for_jobs_with_a_recorded_price() -> None:
    from dataclasses import replace

    from gpuops_api.metrics import SlurmSnapshot, render
    from gpuops_api.slurmdata import Job

    base = Job(id=7, name="train", user="gpuops", state="COMPLETED", reason=None, exit_code=0, nodes="p-0",
               node_count=1, gpus=2, partition="gpu", submit_time=1000, start_time=1000, end_time=4600,
               time_limit_minutes=None, stdout_path=None, batch_host="p-0", usd_per_gpu_hour=0.5, cost_usd=1.0)
    unpriced = replace(base, id=8, usd_per_gpu_hour=None, cost_usd=None)
    families = {f.name: f for f in text_string_to_metric_families(
        render(SlurmSnapshot(up=True, jobs=[unpriced, base])).decode())}
    samples = families["gpuops_slurm_job_cost_usd"].samples
    assert [(s.labels, s.value) for s in samples] == [({"job_id": "7", "user": "gpuops", "state": "completed"}, 1.0)]


# -- requeued jobs (gpuops_slurm_job_requeues; the alert GpuopsSlurmJobRequeuedAfterNodeFailure reads it) ---------


def _job(**fields):
    from gpuops_api.slurmdata import Job

    base = dict(id=7, name="train", user="gpuops", state="RUNNING", reason=None, exit_code=None, nodes="n1",
                node_count=1, gpus=1, partition="gpu", submit_time=1000, start_time=1000, end_time=None,
                time_limit_minutes=None, stdout_path=None, batch_host="n1")
    return Job(**{**base, **fields})


def _families(snap) -> dict:
    from gpuops_api.metrics import render

    return {f.name: f for f in text_string_to_metric_families(render(snap).decode())}


@pytest.mark.parametrize("version", ["v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42"])
def test_a_requeued_jobs_count_and_failed_node_are_read(version: str) -> None:
    """slurmctld's restart_cnt and failed_node (recorded as 0 and "" on jobs never requeued; what
    kill_running_job_by_node_ptr() sets when a node fails under a requeueable job)."""
    from gpuops_api.slurmdata import parse_job

    from .fakes import slurm_fixture

    raw = load(slurm_fixture("jobs.json", version))["body"]["jobs"][0]
    # Slurm 22.05's v0.0.38 has restart_cnt but no failed_node.
    assert raw["restart_cnt"] == 0 and raw.get("failed_node", "") == ""
    assert ("failed_node" in raw) == (version != "v0.0.38")
    assert (parse_job(raw, version).requeues, parse_job(raw, version).failed_node) == (0, None)
    requeued = parse_job({**raw, "restart_cnt": 2, **({"failed_node": "n2"} if "failed_node" in raw else {})}, version)
    assert (requeued.requeues, requeued.failed_node) == (2, "n2" if version != "v0.0.38" else None)


def test_the_accounting_reads_the_requeues_too() -> None:
    from gpuops_api.slurmdata import AccountingDialect

    from .fakes import slurmdb_fixture

    raw = load(slurmdb_fixture("jobs.json"))["body"]["jobs"][0]
    assert (raw["restart_cnt"], raw["failed_node"]) == (0, "")
    job = AccountingDialect("v0.0.42").parse_job({**raw, "restart_cnt": 1, "failed_node": "n1"})
    assert (job.requeues, job.failed_node) == (1, "n1")


def test_requeue_series_only_for_requeued_jobs_with_the_failed_node() -> None:
    from gpuops_api.metrics import SlurmSnapshot

    jobs = [_job(id=5), _job(id=6, state="PENDING", reason="BeginTime", requeues=1, failed_node="n1"),
            _job(id=9, user="alice", requeues=3)]
    samples = _families(SlurmSnapshot(up=True, jobs=jobs))["gpuops_slurm_job_requeues"].samples
    assert [(s.labels, s.value) for s in samples] == [
        ({"job_id": "6", "user": "gpuops", "node": "n1"}, 1.0),
        ({"job_id": "9", "user": "alice", "node": ""}, 3.0)]


def test_the_recorded_cluster_has_no_requeued_job(client: TestClient) -> None:
    metrics = scrape(client)
    assert metrics["gpuops_slurm_job_requeues"] == {}


# -- spend per UTC day and user (gpuops_slurm_spend_usd, the Slurm dashboard's "Spend per day") -------------------


def test_spend_per_day_and_user_counts_each_job_on_its_end_day_and_a_running_job_on_its_start_day() -> None:
    from gpuops_api.costs import spend_by_day_and_user

    day = 86_400
    start = 1_796_428_800  # 2026-12-05T00:00:00Z
    jobs = [_job(id=1, state="COMPLETED", start_time=start - 600, end_time=start + 600, cost_usd=1.5),
            _job(id=2, state="COMPLETED", start_time=start + 3600, end_time=start + 7200, cost_usd=0.25),
            _job(id=3, user="alice", start_time=start - day + 60, cost_usd=2.0),  # running since the day before
            _job(id=4, state="PENDING", start_time=None, cost_usd=None),  # no price: counts nowhere
            _job(id=5, user="alice", state="COMPLETED", start_time=start - 2 * day, end_time=start - day - 1,
                 cost_usd=0.12345)]
    assert spend_by_day_and_user(jobs, now=start + 8000) == {
        ("2026-12-03", "alice"): 0.1235, ("2026-12-04", "alice"): 2.0, ("2026-12-05", "gpuops"): 1.75}


def test_spend_series_are_the_apis_spend_per_day_over_the_last_seven_days(tmp_path) -> None:
    from gpuops_api.metrics import SPEND_DAYS, spend_window

    from .conftest import make_env
    from .test_api_job_history import NOW

    env = make_env(tmp_path, slurm_version="v0.0.42")
    env.clock = lambda: NOW
    env.slurm.clock = env.clock
    env.slurm.use_accounting("final")
    env.slurm.jobs = {}  # slurmctld forgot them: the spend comes from the accounting
    with TestClient(env.app(), raise_server_exceptions=False) as test_client:
        test_client.headers.update(env.auth)
        metrics = scrape(test_client)
        since = spend_window(NOW)
        spend = test_client.get("/api/v1/spend", params={"since": since}).json()
    # The API keeps slurmdbd's records (jobhistory.JobHistory): all of them at the first read, untruncated, and
    # the spend window applied to them as slurmdbd would; the /spend request then reads only what changed since.
    assert env.slurm.db_queries[0] == {"start_time": "1", "end_time": str(NOW + 1), "skip_steps": "true",
                                       "disable_truncate_usage_time": "true"}
    assert since % 86_400 == 0 and NOW - since < SPEND_DAYS * 86_400
    assert metrics["gpuops_slurm_accounting_up"] == {(): 1.0}
    series = metrics["gpuops_slurm_spend_usd"]
    assert series, "the recorded jobs have a price: they count"
    by_day: dict[str, float] = {}
    for labels, usd in series.items():
        by_day[dict(labels)["day"]] = by_day.get(dict(labels)["day"], 0) + usd
    assert by_day == {row["day"]: row["usd"] for row in spend["by_day"]}
    assert {dict(labels)["user"] for labels in series} == {row["user"] for row in spend["by_user"]}


def test_no_spend_series_without_the_accounting(client: TestClient, env: Env) -> None:
    """v0.0.38 (Slurm 22.05): the API reads no accounting; the other metrics are there."""
    metrics = scrape(client)
    assert metrics["gpuops_slurm_accounting_up"] == {(): 0.0}
    assert "gpuops_slurm_spend_usd" not in metrics and metrics["gpuops_slurm_up"] == {(): 1.0}


def test_slurmdbd_down_leaves_the_other_metrics(tmp_path) -> None:
    from .conftest import make_env

    env = make_env(tmp_path, slurm_version="v0.0.42")
    env.slurm.accounting_served = False  # a slurmrestd without openapi/slurmdbd
    with TestClient(env.app(), raise_server_exceptions=False) as test_client:
        test_client.headers.update(env.auth)
        metrics = scrape(test_client)
    assert metrics["gpuops_slurm_up"] == {(): 1.0} and metrics["gpuops_slurm_accounting_up"] == {(): 0.0}
    assert "gpuops_slurm_spend_usd" not in metrics and metrics["gpuops_slurm_jobs"]
