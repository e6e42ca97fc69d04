"""The job list and detail from Slurm's accounting (slurmdbd through slurmrestd's /slurmdb/v0.0.4x/), merged with
slurmctld's live records, on recordings of Slurm 24.11 (tests/fixtures/api/slurmdb/, recorded by
tests/integration/test_slurm_controller_stack.py with GPUOPS_RECORD_FIXTURES=1)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpuops_api.jobhistory import ACCOUNTING_OVERLAP
from gpuops_api.slurmdata import AccountingDialect, accounting_dialect, first_host

from .conftest import Env, TestClient, make_env
from .fakes import load, slurmdb_fixture, slurmdb_index, slurmdb_selects, untruncated

INDEX = slurmdb_index()
JOBS = INDEX["jobs"]
WINDOW = dict(pair.split("=") for pair in INDEX["listing"].split("&"))
# The recording's clock: just after its window opened (the API then asks up to that moment).
NOW = int(WINDOW["end_time"]) - 3600


@pytest.fixture
def henv(tmp_path: Path) -> Env:
    env = make_env(tmp_path, slurm_version="v0.0.42")
    env.clock = lambda: NOW
    env.slurm.clock = env.clock
    return env


@pytest.fixture
def hclient(henv: Env) -> Iterator[TestClient]:
    with TestClient(henv.app(), raise_server_exceptions=False) as test_client:
        test_client.headers.update(henv.auth)
        yield test_client


def ids(body: dict) -> list[int]:
    return [job["id"] for job in body["jobs"]]


def test_finished_jobs_stay_listed_after_slurmctld_forgets_them(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("final")
    henv.slurm.jobs = {}  # MinJobAge passed: slurmctld knows none of them any more
    body = hclient.get("/api/v1/jobs").json()
    states = {job["id"]: job for job in body["jobs"]}
    assert ids(body) == sorted(henv.slurm.db_jobs, reverse=True) and body["total"] == len(henv.slurm.db_jobs)
    for job_id in JOBS["completed"]:
        assert states[job_id]["state"] == "COMPLETED" and states[job_id]["exit_code"] == 0
        assert states[job_id]["user"] == INDEX["user"] and states[job_id]["end_time"] is not None
    failed = states[JOBS["failed"]]
    assert failed["state"] == "FAILED" and failed["exit_code"] == 3 and failed["name"] == "fails"
    assert failed["stdout_path"] == f"/tmp/job-{JOBS['failed']}.out" and failed["batch_host"] == "n1"
    assert states[JOBS["running"]]["state"] == states[JOBS["pending"]]["state"] == "CANCELLED"
    # Cancelled before it started: no node, no batch host (Slurm sets its start to its end, as slurmctld does).
    assert states[JOBS["pending"]]["nodes"] == "" and states[JOBS["pending"]]["batch_host"] is None
    assert failed["reason"] is None  # slurmdbd keeps no reason for it
    # The price its node's GPUs had when slurmctld allocated it (AdminComment, recorded by gpuops-job-price);
    # a job that never started has none. The recording's cluster has no GPU: no GPU-hours, no cost.
    assert failed["usd_per_gpu_hour"] == 0.69 and failed["cost_usd"] == 0.0
    assert states[JOBS["pending"]]["usd_per_gpu_hour"] is None and states[JOBS["pending"]]["cost_usd"] is None


def test_running_and_pending_jobs_are_listed_with_slurmctlds_live_record(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("busy")
    body = hclient.get("/api/v1/jobs").json()
    states = {job["id"]: job for job in body["jobs"]}
    running, pending = states[JOBS["running"]], states[JOBS["pending"]]
    assert running["state"] == "RUNNING" and running["batch_host"] == "n1" and running["start_time"]
    assert running["stdout_path"] == f"/tmp/job-{JOBS['running']}.out" and running["end_time"] is None
    assert pending["state"] == "PENDING" and pending["start_time"] is None and pending["batch_host"] is None
    # slurmctld's record wins while it knows the job: its reason, which slurmdbd does not keep.
    assert states[JOBS["failed"]]["reason"] == "NonZeroExitCode"
    # Jobs slurmctld has forgotten come from slurmdbd alone; the live ones from slurmctld.
    assert set(states) == set(henv.slurm.db_jobs) | set(henv.slurm.jobs)
    assert hclient.get("/api/v1/jobs", params={"state": "running"}).json()["jobs"] == [running]


def test_the_same_jobs_read_alike_from_slurmdbd_and_slurmctld(henv: Env) -> None:
    """slurmdbd's record and slurmctld's of the running job say the same (the fields both have)."""
    henv.slurm.use_accounting("busy")
    from gpuops_api.slurmdata import parse_job
    live = parse_job(henv.slurm.jobs[JOBS["running"]], "v0.0.42")
    accounted = AccountingDialect("v0.0.42").parse_job(load(slurmdb_fixture("job_running.json"))["body"]["jobs"][0])
    for field in ("id", "name", "user", "state", "partition", "submit_time", "start_time", "node_count", "nodes",
                  "batch_host", "stdout_path", "gpus", "time_limit_minutes", "workdir"):
        assert getattr(accounted, field) == getattr(live, field), field


def test_every_recorded_state_of_the_accounting_reads() -> None:
    jobs = [AccountingDialect("v0.0.42").parse_job(raw)
            for raw in load(slurmdb_fixture("jobs_busy.json"))["body"]["jobs"]]
    states = {job.id: job.state for job in jobs}
    assert states[JOBS["failed"]] == "FAILED" and states[JOBS["running"]] == "RUNNING"
    assert states[JOBS["pending"]] == "PENDING" and all(states[i] == "COMPLETED" for i in JOBS["completed"])
    failed = next(job for job in jobs if job.id == JOBS["failed"])
    assert failed.stdout_path == f"/tmp/job-{JOBS['failed']}.out" and failed.batch_host == "n1"
    assert failed.workdir == "/tmp"  # slurmdbd's working_directory: sbatch was run from /tmp


@pytest.mark.parametrize("version", ["v0.0.40", "v0.0.41"])
def test_older_versions_refuse_the_window_so_the_api_does_not_read_them(version: str) -> None:
    assert load(slurmdb_fixture("jobs_busy.json", version))["status"] == 422
    assert accounting_dialect(version) is None and accounting_dialect("v0.0.42") is not None


def test_filters_select_what_slurmdbd_would(hclient: TestClient, henv: Env) -> None:
    """The API keeps slurmdbd's records and applies slurmdbd's own filter to them (jobhistory.accounting_selects):
    the same jobs as slurmdbd's filtered answer (the fake filters as the recorded slurmdbd did)."""
    henv.slurm.use_accounting("busy")
    henv.slurm.jobs = {}
    since, until = 1000, int(WINDOW["end_time"])
    filtered = {"state": "completed", "user": INDEX["user"], "since": since, "until": until}
    body = hclient.get("/api/v1/jobs", params=filtered).json()
    # All of history at the first read, untruncated (a job that started before `since` keeps its start).
    assert henv.slurm.db_queries == [{"start_time": "1", "end_time": str(NOW + 1), "skip_steps": "true",
                                      "disable_truncate_usage_time": "true"}]
    assert ids(body) == sorted(JOBS["completed"], reverse=True)
    assert hclient.get("/api/v1/jobs", params={"user": "root"}).json() == {"jobs": [], "total": 0, "next": None}
    # Later reads ask only for what changed since the last one (with an overlap for slurmdbd's late records).
    assert henv.slurm.db_queries[-1] == {"start_time": str(NOW - ACCOUNTING_OVERLAP), "end_time": str(NOW + 1),
                                         "skip_steps": "true", "disable_truncate_usage_time": "true"}
    for params in ({}, {"state": "PENDING"}, {"state": "RUNNING"}, {"state": "FAILED", "since": NOW - 3600},
                   {"until": min(job["time"]["eligible"] for job in henv.slurm.db_jobs.values()) + 5},
                   {"since": NOW + 10}):
        query = {"start_time": str(max(params.get("since", 1), 1)), "end_time": str(params.get("until", NOW + 1)),
                 **({"state": params["state"]} if "state" in params else {})}
        expected = sorted((job["job_id"] for job in henv.slurm.db_jobs.values()
                           if slurmdb_selects(untruncated(job), query)
                           and ("state" not in params or job["state"]["current"] == [params["state"]])),
                          reverse=True)
        assert ids(hclient.get("/api/v1/jobs", params=params).json()) == expected, params


def test_a_window_that_ends_before_the_jobs_lists_none(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("final")
    henv.slurm.jobs = {}
    first = min(job["time"]["eligible"] for job in henv.slurm.db_jobs.values())
    assert hclient.get("/api/v1/jobs", params={"until": first}).json()["jobs"] == []
    assert ids(hclient.get("/api/v1/jobs", params={"since": first}).json()) == sorted(henv.slurm.db_jobs,
                                                                                      reverse=True)


def test_the_fake_selects_as_the_recorded_slurmdbd_did() -> None:
    """The fake's filtering (slurmdb_selects) gives what slurmdbd answered to the recorded filtered queries."""
    busy = load(slurmdb_fixture("jobs_busy.json"))["body"]["jobs"]
    for name, extra in (("jobs_completed_gpuops.json", {"state": "COMPLETED", "users": INDEX["user"]}),
                        ("jobs_root.json", {"users": "root"}), ("jobs_busy.json", {})):
        recorded = {job["job_id"] for job in load(slurmdb_fixture(name))["body"]["jobs"]}
        assert {job["job_id"] for job in busy if slurmdb_selects(job, {**WINDOW, **extra})} == recorded, name


def test_states_slurmdbd_does_not_keep_come_from_slurmctld_only(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("busy")
    assert hclient.get("/api/v1/jobs", params={"state": "COMPLETING"}).json()["jobs"] == []
    assert henv.slurm.db_queries == []


def test_detail_of_a_job_slurmctld_forgot_comes_from_the_accounting(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("final")
    henv.slurm.jobs = {}
    job = hclient.get(f"/api/v1/jobs/{JOBS['failed']}").json()
    assert job["state"] == "FAILED" and job["exit_code"] == 3 and job["batch_host"] == "n1"
    response = hclient.get("/api/v1/jobs/999999")
    assert response.status_code == 404 and "neither slurmctld nor its accounting" in response.json()["detail"]
    # A cancel of a finished job Slurm only keeps in its accounting is refused as finished.
    assert hclient.delete(f"/api/v1/jobs/{JOBS['failed']}").status_code == 409


def test_pages_over_thousands_of_jobs_follow_the_cursor(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("final")
    henv.slurm.jobs = {}
    template = henv.slurm.db_jobs[JOBS["completed"][0]]
    for job_id in range(100, 2600):
        henv.slurm.db_jobs[job_id] = {**copy.deepcopy(template), "job_id": job_id}
    expected = sorted(henv.slurm.db_jobs, reverse=True)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        body = hclient.get("/api/v1/jobs", params=params).json()
        pages += 1
        seen += ids(body)
        assert body["total"] == len(expected)
        cursor = body["next"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == expected and pages == 3
    # slurmdbd's 2,500 records are read once; the next pages ask only for what changed since.
    after = str(NOW - ACCOUNTING_OVERLAP)
    assert [q["start_time"] for q in henv.slurm.db_queries] == ["1", after, after]
    assert len(hclient.get("/api/v1/jobs").json()["jobs"]) == 100  # the default page


def test_a_slurmrestd_without_the_accounting_plugin_is_503_saying_so(hclient: TestClient, henv: Env) -> None:
    henv.slurm.accounting_served = False
    response = hclient.get("/api/v1/jobs")
    assert response.status_code == 503
    assert "openapi/slurmdbd" in response.json()["detail"]


@pytest.mark.parametrize(("hostlist", "first"), [("n1", "n1"), ("n[3-5,7],m1", "n3"), ("gpu[007-9]", "gpu007"),
                                                 ("", None), ("None assigned", None)])
def test_the_batch_host_of_a_job_without_steps_is_its_first_node(hostlist: str, first: str | None) -> None:
    assert first_host(hostlist) == first


def test_spend_sums_the_priced_jobs_costs_per_user_and_per_day(hclient: TestClient, henv: Env) -> None:
    henv.slurm.use_accounting("final")
    listed = hclient.get("/api/v1/jobs", params={"since": 1, "limit": 1000}).json()["jobs"]
    spend = hclient.get("/api/v1/spend", params={"since": 1}).json()
    priced = [job for job in listed if job["cost_usd"] is not None]
    assert spend["jobs"] == len(listed) and spend["priced_jobs"] == len(priced)
    assert spend["total_usd"] == round(sum(job["cost_usd"] for job in priced), 4)
    assert sum(row["usd"] for row in spend["by_user"]) == pytest.approx(spend["total_usd"], abs=1e-4)
    assert sum(row["usd"] for row in spend["by_day"]) == pytest.approx(spend["total_usd"], abs=1e-4)
    assert {row["user"] for row in spend["by_user"]} == {job["user"] for job in priced}


def test_spend_refuses_an_empty_window(hclient: TestClient) -> None:
    answer = hclient.get("/api/v1/spend", params={"since": 2000, "until": 1000})
    assert answer.status_code == 422 and "'until' must be later than 'since'" in answer.json()["detail"]
