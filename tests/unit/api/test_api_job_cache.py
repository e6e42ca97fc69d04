"""What the job list keeps between requests (jobhistory.JobHistory): slurmctld's finished records while it lists the
jobs in the same state, slurmdbd's records brought up to date by windows of what changed; on recordings of Slurm
24.11 (tests/fixtures/api/slurmdb/v0.0.42/, live_* recorded at one moment by tests/fixtures/api/record_slurm_live.py).
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gpuops_api import jobhistory
from gpuops_api.secretfile import SecretFile
from gpuops_api.slurmdata import listed_job
from gpuops_api.upstreams.http import HttpUpstream
from gpuops_api.upstreams.slurm import SlurmClient

from .conftest import Env, TestClient, make_env
from .fakes import listed_states, load, slurmdb_fixture, slurmdb_index, untruncated
from .test_api_job_history import NOW

JOBS = slurmdb_index()["jobs"]
LIVE = load(slurmdb_fixture("live_index.json"))


def live(name: str) -> dict:
    return load(slurmdb_fixture(f"live_{name}.json"))["body"]


@pytest.fixture
def cenv(tmp_path: Path) -> Env:
    env = make_env(tmp_path, slurm_version="v0.0.42")
    env.clock = lambda: NOW
    env.slurm.clock = env.clock
    return env


@pytest.fixture
def cclient(cenv: Env) -> Iterator[TestClient]:
    with TestClient(cenv.app(), raise_server_exceptions=False) as test_client:
        test_client.headers.update(cenv.auth)
        yield test_client


# -- the recordings, and the fake's answers checked against them -----------------------------------------


def test_the_fakes_states_list_is_the_recorded_one_of_the_same_moment() -> None:
    """slurmctld's /jobs/state lists what its /jobs does: ids, array tasks as <id>_<task>, waiting tasks under the
    array's own record."""
    recorded = Counter((entry["job_id"], tuple(entry["state"])) for entry in live("ctld_jobs_state")["jobs"])
    derived = Counter((entry["job_id"], tuple(entry["state"])) for entry in listed_states(live("ctld_jobs")["jobs"]))
    assert derived == recorded
    array = LIVE["jobs"]["array"]
    assert recorded[(f"{array}_5", ("PENDING",))] == recorded[(f"{array}_6", ("PENDING",))] == 1


def test_every_recorded_states_entry_reads_as_a_job_id_and_its_state() -> None:
    listed = [listed_job(entry) for entry in live("ctld_jobs_state")["jobs"]]
    assert None not in listed
    assert {job_id for job_id, _ in listed} == {job["job_id"] for job in live("ctld_jobs")["jobs"]}
    assert dict(listed)[LIVE["jobs"]["failed"]] == "FAILED"
    assert listed_job({"job_id": "12+1", "state": ["RUNNING"]}) == (12, "RUNNING")  # a hetjob's component
    assert listed_job({"job_id": "x", "state": []}) is None and listed_job({"job_id": 3}) is None


def test_slurmdbd_truncates_times_to_the_window_unless_asked_not_to() -> None:
    """Why the API asks with disable_truncate_usage_time, and what the fake answers then (untruncated)."""
    whole = {job["job_id"]: job for job in live("db_jobs")["jobs"]}
    recent = {job["job_id"]: job for job in live("db_jobs_truncated")["jobs"]}
    start = int(LIVE["recent_window"]["start_time"])
    running = [job_id for job_id, job in whole.items() if job["state"]["current"] == ["RUNNING"]]
    assert running and all(whole[i]["time"]["end"] == 0 and recent[i]["time"]["end"] != 0 for i in running)
    assert all(recent[i]["time"]["start"] == max(start, whole[i]["time"]["start"]) for i in running)
    for job in whole.values():
        pending = job["state"]["current"] == ["PENDING"]
        assert untruncated(job) == job and (not pending or job["time"]["start"] == 0)
    # The held job was never eligible: slurmdbd does not list it; slurmctld does.
    assert LIVE["jobs"]["held"] not in whole


def test_a_job_read_by_the_arrays_own_id_is_that_record_not_the_first_task(tmp_path: Path) -> None:
    answer = live("ctld_job_array")
    array = LIVE["jobs"]["array"]
    assert [job["job_id"] for job in answer["jobs"]][0] == array and len(answer["jobs"]) > 1
    shuffled = {**answer, "jobs": answer["jobs"][1:] + answer["jobs"][:1]}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=shuffled)

    key = tmp_path / "jwt.key"
    key.write_bytes(b"k" * 32)
    client = SlurmClient(HttpUpstream("slurmrestd", "http://slurmrestd", 5, httpx.MockTransport(handle)),
                         "v0.0.42", "gpuops", SecretFile(key, "the JWT key"))
    job = asyncio.run(client.job(array))
    assert job is not None and job.id == array and job.state == "PENDING"


# -- slurmctld's records kept --------------------------------------------------------------------------


def test_finished_jobs_records_are_read_once_and_kept_active_ones_every_time(cclient: TestClient, cenv: Env) -> None:
    cenv.slurm.use_accounting("busy")
    first = cclient.get("/api/v1/jobs").json()
    assert cenv.slurm.list_reads == 0 and sorted(cenv.slurm.job_reads) == sorted(cenv.slurm.jobs)
    cenv.slurm.job_reads.clear()
    second = cclient.get("/api/v1/jobs").json()
    assert sorted(cenv.slurm.job_reads) == sorted([JOBS["running"], JOBS["pending"]])
    assert second == first
    # slurmctld's reason of the finished job, kept (slurmdbd keeps none).
    assert {job["id"]: job["reason"] for job in second["jobs"]}[JOBS["failed"]] == "NonZeroExitCode"


def test_a_job_whose_state_changed_is_read_again(cclient: TestClient, cenv: Env) -> None:
    cenv.slurm.use_accounting("busy")
    cclient.get("/api/v1/jobs")
    final = {job["job_id"]: job for job in load(slurmdb_fixture("ctld_jobs_final.json"))["body"]["jobs"]}
    cenv.slurm.jobs[JOBS["running"]] = final[JOBS["running"]]
    cenv.slurm.job_reads.clear()
    body = cclient.get("/api/v1/jobs").json()
    assert JOBS["running"] in cenv.slurm.job_reads
    assert {job["id"]: job["state"] for job in body["jobs"]}[JOBS["running"]] == "CANCELLED"
    # Cancelled now: finished, kept; no longer read.
    cenv.slurm.job_reads.clear()
    cclient.get("/api/v1/jobs")
    assert cenv.slurm.job_reads == [JOBS["pending"]]


def test_a_job_slurmctld_forgets_leaves_its_kept_record(cclient: TestClient, cenv: Env) -> None:
    cenv.slurm.use_accounting("final")
    assert {job["id"]: job["reason"] for job in cclient.get("/api/v1/jobs").json()["jobs"]}[JOBS["failed"]] == \
        "NonZeroExitCode"
    del cenv.slurm.jobs[JOBS["failed"]]  # MinJobAge passed
    jobs = {job["id"]: job for job in cclient.get("/api/v1/jobs").json()["jobs"]}
    assert jobs[JOBS["failed"]]["reason"] is None and jobs[JOBS["failed"]]["state"] == "FAILED"  # slurmdbd's


def test_more_jobs_to_read_than_single_reads_allow_read_the_whole_list(cclient: TestClient, cenv: Env) -> None:
    cenv.slurm.use_accounting("busy")
    template = cenv.slurm.jobs[JOBS["pending"]]
    for job_id in range(100, 100 + jobhistory.MAX_SINGLE_READS + 1):
        cenv.slurm.jobs[job_id] = {**copy.deepcopy(template), "job_id": job_id}
    body = cclient.get("/api/v1/jobs", params={"limit": 1000}).json()
    assert cenv.slurm.list_reads == 1 and cenv.slurm.job_reads == []
    assert set(range(100, 100 + jobhistory.MAX_SINGLE_READS + 1)) <= {job["id"] for job in body["jobs"]}


# -- slurmdbd's records kept ---------------------------------------------------------------------------


def test_a_job_that_ended_before_the_window_of_changes_is_read_again_by_id(tmp_path: Path) -> None:
    env = make_env(tmp_path, slurm_version="v0.0.42")
    now = [NOW]
    env.clock = lambda: now[0]
    env.slurm.clock = env.clock
    env.slurm.use_accounting("busy")
    env.slurm.jobs = {}
    with TestClient(env.app(), raise_server_exceptions=False) as client:
        client.headers.update(env.auth)
        before = {job["id"]: job["state"] for job in client.get("/api/v1/jobs").json()["jobs"]}
        assert before[JOBS["running"]] == "RUNNING" and before[JOBS["pending"]] == "PENDING"
        # slurmdbd hears of the cancellations late: when the API next asks, they ended before its window.
        env.slurm.use_accounting("final")
        env.slurm.jobs = {}
        for job_id in (JOBS["running"], JOBS["pending"]):
            record = env.slurm.db_jobs[job_id]
            env.slurm.db_jobs[job_id] = {**record, "time": {**record["time"], "end": NOW - 100}}
        now[0] = NOW + 200
        after = {job["id"]: job["state"] for job in client.get("/api/v1/jobs").json()["jobs"]}
    assert after[JOBS["running"]] == after[JOBS["pending"]] == "CANCELLED"
    assert env.slurm.db_queries[-1]["start_time"] == str(NOW - jobhistory.ACCOUNTING_OVERLAP)
    read_by_id = [r.url.path for r in env.slurm.requests if r.url.path.startswith("/slurmdb/v0.0.42/job/")]
    assert sorted(read_by_id) == sorted(f"/slurmdb/v0.0.42/job/{i}" for i in (JOBS["running"], JOBS["pending"]))


def test_everything_is_read_again_now_and_then(tmp_path: Path) -> None:
    env = make_env(tmp_path, slurm_version="v0.0.42")
    now = [NOW]
    env.clock = lambda: now[0]
    env.slurm.clock = env.clock
    env.slurm.use_accounting("final")
    env.slurm.jobs = {}
    with TestClient(env.app(), raise_server_exceptions=False) as client:
        client.headers.update(env.auth)
        now[0] = NOW + 100
        client.get("/api/v1/jobs")
        # A change no window notices: an old record edited (sacctmgr, a fix by hand).
        env.slurm.db_jobs[JOBS["failed"]] = {**env.slurm.db_jobs[JOBS["failed"]], "name": "renamed"}
        now[0] = NOW + 200
        assert {j["id"]: j["name"] for j in client.get("/api/v1/jobs").json()["jobs"]}[JOBS["failed"]] == "fails"
        now[0] = NOW + 100 + jobhistory.ACCOUNTING_FULL_READ_SECONDS
        assert {j["id"]: j["name"] for j in client.get("/api/v1/jobs").json()["jobs"]}[JOBS["failed"]] == "renamed"
    assert [q["start_time"] for q in env.slurm.db_queries] == ["1", str(NOW + 100 - jobhistory.ACCOUNTING_OVERLAP),
                                                               "1"]


def test_requests_at_the_same_time_share_one_read(cenv: Env) -> None:
    cenv.slurm.use_accounting("busy")

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # slurmrestd takes a while: the other requests come meanwhile
        return cenv.slurm.transport().handle_request(request)

    client = SlurmClient(HttpUpstream("slurmrestd", "http://slurmrestd", 5, httpx.MockTransport(slow)), "v0.0.42",
                         cenv.slurm.user, SecretFile(cenv.settings.slurm_jwt_key_file, "the JWT key", strip=False),
                         clock=cenv.clock)
    kept = jobhistory.history(client)

    async def three() -> None:
        answers = await asyncio.gather(*(kept.accounted(NOW) for _ in range(3)))
        assert answers[0] == answers[1] == answers[2] and answers[0]

    asyncio.run(three())
    # The first reads; the two that came while it ran wait, and one read started after they came serves both.
    assert len(cenv.slurm.db_queries) == 2
