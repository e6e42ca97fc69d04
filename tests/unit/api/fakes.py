"""Fake upstreams for the API's unit tests, answering with replies recorded from real ones.

The replies are in tests/fixtures/api/ (tests/fixtures/api/record_api_fixtures.py
records them from a real deployment: slurmrestd v0.0.38, the local cloud;
tests/fixtures/api/record_prometheus.py records a live Prometheus answering the
API's own requests; tests/fixtures/api/record_slurmrestd.py records slurmrestd
24.11's v0.0.40, v0.0.41 and v0.0.42 into tests/fixtures/api/slurm/<version>/).
Each fake is an httpx transport, so the API's own HTTP code runs
unchanged; `down = True` makes it refuse connections, `timeout = True` time
out, and `status_override` answer every request with that status.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from gpuops_api.errors import UpstreamError
from gpuops_api.slurmdata import gpu_count
from gpuops_api.upstreams.ssh import Tail

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "api"
#: The recording of v0.0.38 (Slurm 22.05) lies in slurm/ itself, the others in slurm/<version>/.
SLURM_V38 = "v0.0.38"


def load(name: str) -> dict[str, Any]:
    """A recorded reply: {"status": int, "body": JSON}."""
    return json.loads((FIXTURES / name).read_text())


def slurm_fixture(name: str, version: str = SLURM_V38) -> str:
    """The path (under FIXTURES) of slurmrestd's recorded reply `name` in one OpenAPI version."""
    return f"slurm/{name}" if version == SLURM_V38 else f"slurm/{version}/{name}"


INDEX: dict[str, Any] = json.loads((FIXTURES / "index.json").read_text())


def slurmdb_fixture(name: str, version: str = "v0.0.42") -> str:
    """The path (under FIXTURES) of slurmrestd's recorded accounting (/slurmdb/) reply `name`."""
    return f"slurmdb/{version}/{name}"


def slurmdb_index() -> dict[str, Any]:
    """What the accounting recording names (tests/integration/test_slurm_controller_stack.py): its job ids, its
    query window."""
    return load(slurmdb_fixture("index.json"))


def slurmdb_selects(job: dict[str, Any], params: dict[str, str]) -> bool:
    """Whether slurmdbd returns `job` for a /slurmdb/<version>/jobs query (start_time, end_time, state, users):
    its SQL in as_mysql_jobacct_process.c (_state_time_string and the window without states) for these states."""
    users = params["users"].split(",") if "users" in params else []
    if users and job["user"] not in users:
        return False
    start, end = int(params.get("start_time", 0)), int(params.get("end_time", 0))
    assert start and end, "the API always sends the window (slurmdbd would default it to today)"
    times, now = job["time"], job["state"]["current"][0]
    eligible, started, ended = times["eligible"], times["start"], times["end"]
    states = params["state"].split(",") if "state" in params else []
    if not states:
        return bool(eligible) and eligible < end and (ended >= start or ended == 0)
    for state in states:
        if state == "PENDING":
            selected = bool(eligible) and ((bool(started) and start < started)
                                           or (not started and bool(ended) and start < ended)
                                           or (not started and not ended and now == "PENDING")) and end > eligible
        elif state == "RUNNING":
            selected = bool(started) and (start < ended or (not ended and now == "RUNNING")) and end > started
        else:
            selected = now == state and bool(ended) and start <= ended <= end
        if selected:
            return True
    return False


#: slurmdbd's states of a job that has not ended (its time_end is 0).
UNENDED_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "REQUEUED"})


def untruncated(job: dict[str, Any]) -> dict[str, Any]:
    """slurmdbd's record as it answers with disable_truncate_usage_time (the recordings were made without): an
    unfinished job's end is 0, a pending one's start too (slurmdb/v0.0.42/live_db_jobs.json, recorded so)."""
    if not UNENDED_STATES & set(job["state"]["current"]):
        return job
    times = {**job["time"], "end": 0}
    if "PENDING" in job["state"]["current"]:
        times["start"] = 0
    return {**job, "time": times}


def listed_states(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """slurmctld's ``GET /slurm/v0.0.42/jobs/state`` entries for its full records (``GET /jobs``): ``"<id>"``, an
    array task ``"<id>_<task>"``, the tasks still waiting in the array's own record once each under its id
    (checked against slurmdb/v0.0.42/live_ctld_jobs*.json, recorded at one moment)."""
    listed = []
    for job in jobs:
        task = job.get("array_task_id") or {}
        pending = job.get("array_task_string") or ""
        if task.get("set"):
            names = [f"{job['job_id']}_{task['number']}"]
        elif pending:
            names = [f"{job['job_id']}_{n}" for part in pending.split(",") for n in _task_range(part)]
        else:
            names = [str(job["job_id"])]
        listed += [{"job_id": name, "state": list(job["job_state"])} for name in names]
    return listed


def _task_range(part: str) -> list[int]:
    first, _, last = part.partition("-")
    return list(range(int(first), int(last or first) + 1))


def slurm_index(version: str = SLURM_V38) -> dict[str, Any]:
    """What a recording names: its job ids by kind ("jobs"), the completed job's output."""
    return INDEX if version == SLURM_V38 else load(slurm_fixture("index.json", version))


def recorded_job(kind: str, version: str = SLURM_V38) -> dict[str, Any]:
    """The job record of one recorded job (completed, failed, cancelled, pending, running)."""
    return load(slurm_fixture(f"job_{kind}.json", version))["body"]["jobs"][0]


class FakeUpstream:
    def __init__(self) -> None:
        self.down = False
        self.timeout = False
        self.status_override: int | None = None
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._dispatch)

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if self.timeout:
            raise httpx.ReadTimeout("timed out", request=request)
        if self.status_override is not None:
            return httpx.Response(self.status_override, text="<html>upstream broke</html>")
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    @staticmethod
    def reply(recorded: dict[str, Any]) -> httpx.Response:
        return httpx.Response(recorded["status"], json=recorded["body"])


class FakeSlurm(FakeUpstream):
    """slurmrestd in one OpenAPI version: checks each request's JWT as slurmrestd does, serves the recorded replies.

    Its /openapi/v3 is the one recorded with that version (v0.0.42's also offers v0.0.40 and v0.0.41, as
    Slurm 24.11's slurmrestd does; the others offer only their own), so the API finds the version from it.
    """

    def __init__(self, key: bytes, clock: Callable[[], float], user: str = "root", version: str = SLURM_V38) -> None:
        super().__init__()
        self.key = key
        self.clock = clock
        self.user = user
        self.version = version
        self.prefix = f"/slurm/{version}"
        self.nodes_fixture = self.fixture("nodes_busy.json")
        # The OpenAPI document of the recorded slurmrestd (the API reads its version from it).
        self.openapi_fixture = self.fixture("openapi_v3.json")
        self.openapi_reads = 0
        self.tokens: list[dict[str, Any]] = []
        self.submitted: list[dict[str, Any]] = []
        self.cancelled: list[int] = []
        # Every recorded job in its last recorded state, plus the running and pending ones.
        self.jobs: dict[int, dict[str, Any]] = {}
        self.use_final_jobs()
        self.use_busy_jobs()
        # slurmdbd's records (/slurmdb/<version>/): none unless use_accounting() loads a recording of them.
        self.db_jobs: dict[int, dict[str, Any]] = {}
        self.db_queries: list[dict[str, str]] = []
        # False: a slurmrestd without openapi/slurmdbd (its /slurmdb/ paths are unknown to it).
        self.accounting_served = True
        # Reads of slurmctld's full list (GET /jobs) and of single jobs (GET /job/<id>), in order.
        self.list_reads = 0
        self.job_reads: list[int] = []

    def fixture(self, name: str) -> str:
        return slurm_fixture(name, self.version)

    def recorded(self, name: str) -> httpx.Response:
        return self.reply(load(self.fixture(name)))

    def use_busy_jobs(self) -> None:
        """The jobs as they were while the GPU job ran and another waited (RUNNING, PENDING)."""
        for job in load(self.fixture("jobs_busy.json"))["body"]["jobs"]:
            self.jobs[job["job_id"]] = job

    def use_final_jobs(self) -> None:
        for job in load(self.fixture("jobs.json"))["body"]["jobs"]:
            self.jobs[job["job_id"]] = job

    def use_accounting(self, moment: str = "busy") -> None:
        """slurmctld and slurmdbd as recorded together (slurmdb/<version>/): while a job ran and another waited
        ("busy"), or after both were cancelled ("final"); slurmctld's jobs are then those of that recording."""
        self.db_jobs = {job["job_id"]: job for job in load(slurmdb_fixture(f"jobs_{moment}.json", self.version))
                        ["body"]["jobs"]}
        self.jobs = {job["job_id"]: job for job in load(slurmdb_fixture(f"ctld_jobs_{moment}.json"))["body"]["jobs"]}

    def _db_envelope(self, **extra: Any) -> dict[str, Any]:
        body = copy.deepcopy(load(slurmdb_fixture("jobs_root.json", self.version))["body"])
        body.pop("jobs")
        return {**body, **extra}

    def _accounting(self, request: httpx.Request, path: str) -> httpx.Response:
        if request.method == "GET" and path == "/jobs":
            params = {key: values[-1] for key, values in parse_qs(request.url.query.decode()).items()}
            self.db_queries.append(params)
            jobs = list(self.db_jobs.values())
            if params.get("disable_truncate_usage_time") == "true":
                jobs = [untruncated(job) for job in jobs]
            jobs = [job for job in jobs if slurmdb_selects(job, params)]
            if params.get("skip_steps") == "true":
                jobs = [{**job, "steps": []} for job in jobs]
            return httpx.Response(200, json=self._db_envelope(jobs=jobs))
        match = re.fullmatch(r"/job/(\d+)", path)
        if request.method == "GET" and match:
            job_id = int(match.group(1))
            if job_id not in self.db_jobs:
                return self.reply(load(slurmdb_fixture("job_unknown.json")))
            index = slurmdb_index()["jobs"]
            kind = next((k for k in ("failed", "running", "pending") if index[k] == job_id), None)
            if kind is not None and self.db_jobs[job_id]["state"] == load(slurmdb_fixture(f"job_{kind}.json"))[
                    "body"]["jobs"][0]["state"]:
                return self.reply(load(slurmdb_fixture(f"job_{kind}.json")))  # with its steps, as recorded
            return httpx.Response(200, json=self._db_envelope(jobs=[self.db_jobs[job_id]]))
        return httpx.Response(404, text="Unable to find path")

    def _authorised(self, request: httpx.Request) -> bool:
        if request.headers.get("X-SLURM-USER-NAME") != self.user:
            return False
        try:
            # Times are checked against the app's clock below, not this machine's.
            claims = jwt.decode(request.headers.get("X-SLURM-USER-TOKEN", ""), self.key, algorithms=["HS256"],
                                options={"require": ["exp", "iat", "sun"], "verify_exp": False,
                                         "verify_iat": False})
        except jwt.PyJWTError:
            return False
        self.tokens.append(claims)
        now = self.clock()
        return claims["sun"] == self.user and claims["iat"] <= now < claims["exp"]

    def _envelope(self, **extra: Any) -> dict[str, Any]:
        body = copy.deepcopy(load(self.fixture("ping.json"))["body"])
        body.pop("pings")
        return {**body, **extra}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self._authorised(request):
            return httpx.Response(401, text="Authentication failure")
        if request.method == "GET" and request.url.path == "/openapi/v3":
            self.openapi_reads += 1
            return self.reply(load(self.openapi_fixture))
        if self.version == "v0.0.42" and self.accounting_served and request.url.path.startswith(
                f"/slurmdb/{self.version}/"):
            return self._accounting(request, request.url.path.removeprefix(f"/slurmdb/{self.version}"))
        if not request.url.path.startswith(self.prefix + "/"):
            return httpx.Response(404, text="Unable to find path")
        path = request.url.path.removeprefix(self.prefix)
        if request.method == "GET" and path in ("/diag", "/ping"):
            return self.recorded(f"{path[1:]}.json")
        if request.method == "GET" and path == "/nodes":
            return self.reply(load(self.nodes_fixture))
        if request.method == "GET" and path == "/jobs":
            self.list_reads += 1
            return httpx.Response(200, json=self._envelope(jobs=list(self.jobs.values())))
        if request.method == "GET" and path == "/jobs/state" and self.version == "v0.0.42":
            return httpx.Response(200, json=self._envelope(jobs=listed_states(list(self.jobs.values()))))
        if request.method == "POST" and path == "/job/submit":
            body = json.loads(request.content)
            self.submitted.append(body)
            job = body.get("job", {})
            if job.get("partition") not in (None, "gpu"):
                return self.recorded("job_submit_bad_partition.json")
            # v0.0.38 asks for GPUs with "gres": "gpu:N", v0.0.40+ with "tres_per_node": "gres/gpu:N".
            gpus = gpu_count(job.get("gres" if self.version == SLURM_V38 else "tres_per_node", ""))
            if gpus is not None and gpus > 2:
                return self.recorded("job_submit_too_many_gpus.json")
            return self.recorded("job_submit.json")
        match = re.fullmatch(r"/job/(\d+)", path)
        if match:
            job_id = int(match.group(1))
            known = job_id in self.jobs
            if request.method == "GET":
                self.job_reads.append(job_id)
                if not known:
                    return self.recorded("job_unknown.json")
                return httpx.Response(200, json=self._envelope(jobs=[self.jobs[job_id]]))
            if request.method == "DELETE":
                if not known:
                    return self.recorded("job_cancel_unknown.json")
                self.cancelled.append(job_id)
                return self.recorded("job_cancel.json")
        return httpx.Response(404, text="Unable to find path")


class FakeCloud(FakeUpstream):
    """The cloud's REST API v2 with the pods of tests/fixtures/api/cloud (RunPod's v2 example, the recording's ids)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.pods = {}
        for name in ("cloud/pod_0.json", "cloud/pod_1.json"):
            pod = load(name)["body"]
            self.pods[pod["id"]] = pod

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return self.reply(load("cloud/unauthorized.json"))
        path = request.url.path.removeprefix("/v2")
        if request.method == "GET" and path == "/pods":
            return httpx.Response(200, json={"pods": list(self.pods.values())})
        match = re.fullmatch(r"/pods/([^/]+)", path)
        if request.method == "GET" and match:
            pod = self.pods.get(match.group(1))
            if pod:
                return httpx.Response(200, json=pod)
            return self.reply(load("cloud/pod_unknown.json"))
        return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "resource not found"})

    @staticmethod
    def reply(recorded: dict[str, Any]) -> httpx.Response:
        return httpx.Response(recorded["status"], json=recorded["body"],
                              headers={"Content-Type": "application/problem+json"} if recorded["status"] >= 400 else {})


class FakePrometheus(FakeUpstream):
    """Prometheus as recorded live (tests/fixtures/api/record_prometheus.py drove the API against a real one).

    A request is answered only when the recording holds a request to the same path with the same query text and
    the same parameter names; the values of the others (time, start, end, step) may differ, since the tests run on
    a fixed clock. One generalisation: a query for a job (`hpc_job="<id>"`) that the recording does not hold gets
    the recorded answer for a job that held no GPU (an empty result), if the query is that one's with the id
    changed. Any other request gets Prometheus' error envelope saying that it was not recorded, so the API answers
    503 and the test fails until the recording is made again. `refuse = True` answers every query with
    Prometheus' recorded refusal of an invalid one.
    """

    JOB_LABEL = re.compile(r'hpc_job="\d+"')

    RECORDING = "prometheus/recording.json"

    def __init__(self) -> None:
        super().__init__()
        recording = load(self.RECORDING)
        self.answers: dict[tuple[str, str | None, tuple[str, ...]], dict[str, Any]] = {}
        self.no_gpu_job: dict[tuple[str, str | None, tuple[str, ...]], dict[str, Any]] = {}
        self.refusal: dict[str, Any] | None = None
        for exchange in recording["exchanges"]:
            request, response = exchange["request"], exchange["response"]
            if exchange["route"] is None and response["status"] == 400:
                self.refusal = response
                continue
            self.answers[self.key(request["path"], request["params"])] = response
            query = request["params"].get("query", "")
            if self.JOB_LABEL.search(query) and response.get("body", {}).get("data", {}).get("result") == []:
                self.no_gpu_job[self.key(request["path"], request["params"], any_job=True)] = response
        assert self.refusal, f"{self.RECORDING} holds no refused query"
        self.refuse = False
        self.ranges: list[dict[str, str]] = []
        #: The recorded replies served, in order.
        self.answered: list[dict[str, Any]] = []

    @classmethod
    def key(cls, path: str, params: dict[str, str], any_job: bool = False) -> tuple[str, str | None, tuple[str, ...]]:
        query = params.get("query")
        if any_job and query is not None:
            query = cls.JOB_LABEL.sub('hpc_job="<any>"', query)
        return path, query, tuple(sorted(params))

    @staticmethod
    def answer(recorded: dict[str, Any]) -> httpx.Response:
        if "body" in recorded:
            return httpx.Response(recorded["status"], json=recorded["body"])
        return httpx.Response(recorded["status"], text=recorded["text"],
                              headers={"Content-Type": recorded["content_type"]})

    def handle(self, request: httpx.Request) -> httpx.Response:
        params = {key: values[-1] for key, values in parse_qs(request.url.query.decode()).items()}
        path = request.url.path
        if path == "/api/v1/query_range":
            self.ranges.append(params)
        if self.refuse and path.startswith("/api/v1/"):
            return self.answer(self.refusal)
        recorded = self.answers.get(self.key(path, params)) or self.no_gpu_job.get(self.key(path, params, any_job=True))
        if recorded is None:
            error = (f"not in the recording {self.RECORDING}: {request.method} {path} with {params}. If the API's "
                     f"query changed on purpose, record again: tests/fixtures/api/record_prometheus.py")
            return httpx.Response(400, json={**self.refusal["body"], "error": error})
        self.answered.append(recorded)
        return self.answer(recorded)


class FakeSsh:
    """Stands in for SSH: files by (alias, path); records every read."""

    def __init__(self) -> None:
        self.down = False
        self.files: dict[tuple[str, str], str] = {}
        self.reads: list[tuple[str, int, str, str, int]] = []
        self.users: list[str] = []
        #: The job directory each read was confined to (the real reader refuses a file outside it).
        self.withins: list[str] = []

    async def tail(self, host: str, port: int, alias: str, path: str, lines: int, as_user: str,
                   within: str) -> Tail | None:
        self.reads.append((host, port, alias, path, lines))
        self.users.append(as_user)
        self.withins.append(within)
        if self.down:
            raise UpstreamError("ssh", f"cannot connect to {alias} ({host}:{port}) over SSH: Connection refused")
        text = self.files.get((alias, path))
        if text is None:
            return None
        rows = text.splitlines(keepends=True)
        return Tail("".join(rows[-lines:]), min(lines, len(rows)), len(rows) > lines)


def fixed_clock() -> float:
    """One hour after the recorded controller pod started (its uptime is then 3600 s)."""
    started = load("cloud/pod_0.json")["body"]["startedAt"]
    return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() + 3600
