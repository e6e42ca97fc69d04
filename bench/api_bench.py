"""The API's job list with 1,000 jobs in Slurm's accounting: GET /api/v1/jobs latency (p50, p95, max).

A real Slurm 24.11 controller stack (munged, MariaDB, slurmdbd, slurmctld,
slurmrestd: tests/integration/test_slurm_controller_stack.py's Cluster, in a
Compose project of its own with free ports) and two stand-in pods
(gpuops/runpod-pytorch-standin) joined through their SSH tunnels run
`sbatch --array=1-<jobs>` of a trivial job as the job account: every array
task is a job of its own in slurmdbd, with a node, a start and an end. The
gpuops API (python -m gpuops_api, this checkout's code) then runs on the
control host against that slurmrestd, as the app role configures it, and
answers the timed requests over one keep-alive connection, as a browser's
would.

slurmctld still holds the finished jobs (MinJobAge is an hour): the worst
case of the first hour. The API keeps what no longer changes
(gpuops_api.jobhistory.JobHistory): the untimed first request reads both
lists in full, each later one slurmctld's ids and states (/jobs/state) and
slurmdbd's changes since the last read. slurmrestd's two full reads alone,
timed too, are what each request cost before.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import yaml

from bench.common import BenchError, Result, Table, say
from tests.integration.helpers import REPO, VENV_BIN, free_port, wait_for
from tests.integration.test_slurm_controller_stack import JOB_USER, NODES, Cluster, images_present, wait_idle

#: The timed requests: label -> query (GET /api/v1/jobs).
QUERIES = {
    "first page (100 newest)": {},
    "filtered: state=COMPLETED, user, 50 a page": {"state": "COMPLETED", "user": JOB_USER, "limit": "50"},
    "a later page (offset 400)": {"offset": "400"},
}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def latency(samples: list[float]) -> dict[str, Any]:
    """p50, p95, min, max (ms) of request times in seconds."""
    ordered = sorted(samples)
    return {
        "requests": len(ordered),
        "p50_ms": _ms(statistics.median(ordered)),
        "p95_ms": _ms(statistics.quantiles(ordered, n=20, method="inclusive")[18]),
        "min_ms": _ms(ordered[0]),
        "max_ms": _ms(ordered[-1]),
    }


def _row(label: str, stats: dict[str, Any]) -> list[Any]:
    return [label, stats["requests"], f"{stats['p50_ms']:.1f}", f"**{stats['p95_ms']:.1f}**", f"{stats['min_ms']:.1f}",
            f"{stats['max_ms']:.1f}"]


class Api:
    """The gpuops API on the control host against the cluster's slurmrestd (as the app role configures it)."""

    def __init__(self, root: Path, cluster: Cluster, source: Path = REPO / "app" / "api") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.token = secrets.token_urlsafe(32)
        (root / "api_token").write_text(self.token + "\n")
        (root / "cloud_api_key").write_text("unused\n")
        config = {
            "listen_host": "127.0.0.1",
            "listen_port": self.port,
            "token_file": str(root / "api_token"),
            "metrics_token_file": str(root / "api_token"),
            "cloud": "local",
            "prometheus_url": "http://127.0.0.1:9",  # unused by the job list
            "slurmrestd_url": f"http://127.0.0.1:{cluster.restd_port}",
            "slurm_api_version": None,
            "slurm_user": JOB_USER,
            "slurm_jwt_key_file": str(cluster.stack / "slurm" / "jwt_hs256.key"),
            "cloud_api_url": "http://127.0.0.1:9/v2",
            "cloud_api_key_file": str(root / "cloud_api_key"),
            "pods_file": str(root / "pods.json"),
            "ssh_private_key_file": str(root / "id_ed25519"),
            "ssh_known_hosts_file": str(root / "known_hosts"),
        }
        (root / "api.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "GPUOPS_API_CONFIG": str(root / "api.yaml"), "PYTHONPATH": str(source)}
        self.log = (root / "api.log").open("w")
        self.process = subprocess.Popen([str(VENV_BIN / "python"), "-m", "gpuops_api"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60,
                                   headers={"Authorization": f"Bearer {self.token}"})
        wait_for("the gpuops API", self._alive, timeout=60, interval=0.5)

    def _alive(self) -> bool:
        if self.process.poll() is not None:
            raise BenchError(f"the API exited {self.process.returncode}: {Path(self.log.name).read_text()[-2000:]}")
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        answer = self.client.get(path, params=params)
        if answer.status_code != 200:
            raise BenchError(f"GET {path} {params or ''} answered {answer.status_code}: {answer.text[:1000]}")
        return answer

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _timed_gets(get, runs: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        get()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        get()
        samples.append(time.perf_counter() - start)
    return samples


def _requests(api: Api, runs: int, tag: str = "") -> dict[str, Any]:
    """Every QUERIES request and a /metrics scrape, timed: label -> latency."""
    found = {}
    for label, params in QUERIES.items():
        found[label] = latency(_timed_gets(lambda params=params: api.get("/api/v1/jobs", params), runs))
        say(f"api: {tag}GET /api/v1/jobs {label}: {found[label]}")
    found["GET /metrics"] = latency(_timed_gets(lambda: api.get("/metrics"), max(runs // 4, 10)))
    say(f"api: {tag}GET /metrics: {found['GET /metrics']}")
    return found


def _checkout(revision: str, where: Path) -> Path:
    """app/api of a git revision (the baseline), extracted under `where`, with the collection's module_utils that
    its upstreams/_runpod_api.py links to."""
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision, "app/api",
                              "collections/ansible_collections/gpuops/platform/plugins/module_utils"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise BenchError(f"git archive {revision} app/api failed: {archive.stderr.decode()[-500:]}")
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where / "app" / "api"


def fill(cluster: Cluster, jobs: int, timeout: float = 1800) -> dict[str, Any]:
    """`sbatch --array=1-<jobs>` of a trivial job as the job account, waited for: <jobs> finished jobs."""
    start = time.monotonic()
    out = cluster.ctl("sbatch", "--parsable", f"--array=1-{jobs}", "--chdir=/tmp", "--output=/dev/null",
                      "--job-name=bench", "--wrap", "true", user=JOB_USER).stdout
    array_id = int(out.strip().split(";")[0])

    def left() -> int:
        answer = cluster.ctl("squeue", "--noheader", "--array", "--jobs", str(array_id), "--format=%i", check=False)
        return len(answer.stdout.split()) if answer.returncode == 0 else -1

    deadline = time.monotonic() + timeout
    while (remaining := left()) != 0:
        if time.monotonic() > deadline:
            raise BenchError(f"{remaining} of the {jobs} array tasks still queued after {timeout:.0f} s")
        time.sleep(5)
    ran_s = time.monotonic() - start
    # slurmdbd takes the last records a moment after slurmctld.
    def accounted() -> int:
        rows = cluster.ctl("sacct", "--noheader", "--parsable2", "--allocations", "--allusers", "--starttime=2020-01-01",
                           "--format=JobID,State", check=False).stdout.split()
        return sum(1 for row in rows if row.startswith(f"{array_id}_") and row.endswith("|COMPLETED"))
    wait_for(f"{jobs} completed array tasks in the accounting", lambda: accounted() == jobs, timeout=120, interval=2)
    return {"array_job_id": array_id, "jobs": jobs, "ran_s": round(ran_s, 1)}


def measure(root: Path, jobs: int = 1000, runs: int = 200, baseline: str | None = None) -> Result:
    if not images_present():
        raise BenchError("the images gpuops/slurm-controller:trixie, gpuops/slurm-mariadb:trixie and "
                         "gpuops/runpod-pytorch-standin:latest are missing: run scripts/setup.sh slurm standin")
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root)
    # Filling only: slurmctld schedules a finished job's successor at once (batch_sched_delay=0, not every 3 s),
    # and each pod runs 2 tasks at a time (the control host's 2 cores). The API and slurmrestd are as shipped.
    cluster.vars["slurm_extra_config"] = {"SchedulerParameters": "batch_sched_delay=0"}
    cluster.vars["slurm_controller_nodes"] = [dict(node, cpus=2) for node in cluster.vars["slurm_controller_nodes"]]
    api: Api | None = None
    try:
        say(f"api: deploying a controller stack (project {cluster.project}) and {len(NODES)} stand-in pods...")
        cluster.deploy()
        for index, node in enumerate(NODES, start=1):
            cluster.start_pod(index, node)
        for node in NODES:
            wait_for(f"sshd of {node}", lambda node=node: cluster.pod_exec(node, "pgrep -x sshd", check=False)
                     .returncode == 0, timeout=60)
        cluster.join(*NODES)
        for node in NODES:
            cluster.tunnel(node)
        wait_idle(cluster)
        say(f"api: running {jobs} array tasks...")
        filled = fill(cluster, jobs)
        say(f"api: {jobs} jobs ran in {filled['ran_s']} s")
        api = Api(root / "api", cluster)
        listed = api.get("/api/v1/jobs", {"limit": "1000"}).json()
        held = len(cluster.ctl("squeue", "--noheader", "--all", "--states=all", "--format=%i", check=False)
                   .stdout.split())
        if listed["total"] < jobs:
            raise BenchError(f"the API lists {listed['total']} jobs, expected at least {jobs}")
        say(f"api: the API lists {listed['total']} jobs; slurmctld holds {held}")

        results: dict[str, Any] = {"fill": filled, "api_total": listed["total"], "slurmctld_holds": held,
                                   "requests": _requests(api, runs), "slurmrestd": {}}
        if baseline is not None:
            api.close()
            api = None
            try:
                api = Api(root / "api-baseline", cluster, _checkout(baseline, root / "baseline"))
                results["baseline"] = {"revision": baseline, "requests": _requests(api, runs, f"({baseline}) ")}
            except BenchError as err:  # keep this checkout's figures
                say(f"api: the baseline {baseline} could not be timed: {err}")
                results["baseline"] = {"revision": baseline, "error": str(err)[-2000:]}
        # slurmrestd alone: the two reads every job list makes.
        key = (cluster.stack / "slurm" / "jwt_hs256.key").read_bytes()
        version = "v0.0.42"  # what the API chose: the newest Slurm 24.11's slurmrestd offers that it reads
        with httpx.Client(base_url=f"http://127.0.0.1:{cluster.restd_port}", timeout=60) as restd:
            def headers() -> dict[str, str]:
                now = int(time.time())
                return {"X-SLURM-USER-NAME": JOB_USER,
                        "X-SLURM-USER-TOKEN": jwt.encode({"exp": now + 60, "iat": now, "sun": JOB_USER}, key,
                                                         algorithm="HS256")}
            reads = {
                f"slurmctld's jobs (GET /slurm/{version}/jobs)": (f"/slurm/{version}/jobs", None),
                f"slurmdbd's jobs (GET /slurmdb/{version}/jobs, skip_steps)": (
                    f"/slurmdb/{version}/jobs", {"start_time": "1", "end_time": str(int(time.time()) + 3600),
                                                 "skip_steps": "true"}),
            }
            for label, (path, params) in reads.items():
                samples = _timed_gets(lambda path=path, params=params: restd.get(path, params=params,
                                                                                 headers=headers()).raise_for_status(),
                                      max(runs // 4, 10))
                results["slurmrestd"][label] = latency(samples)
                say(f"api: slurmrestd {label}: {results['slurmrestd'][label]}")
    finally:
        if api is not None:
            api.close()
        say("api: removing the controller stack and the pods...")
        cluster.destroy()

    rows = [_row(label if label.startswith("GET /metrics") else f"`GET /api/v1/jobs` {label}", stats)
            for label, stats in results["requests"].items()]
    if "requests" in results.get("baseline", {}):
        rows += [_row(f"before ({baseline}): " + (label if label.startswith("GET /metrics") else
                                                    f"`GET /api/v1/jobs` {label}"), stats)
                 for label, stats in results["baseline"]["requests"].items()]
    rows += [_row(f"slurmrestd alone: {label}", stats) for label, stats in results["slurmrestd"].items()]
    table = Table(f"API: GET /api/v1/jobs with {listed['total']} jobs in Slurm's accounting ({runs} requests each)",
                  ["request", "requests", "p50 (ms)", "p95 (ms)", "min (ms)", "max (ms)"], rows,
                  [f"{jobs} finished jobs (`sbatch --array=1-{jobs} --wrap true` as {JOB_USER}, on {len(NODES)} "
                   f"stand-in pods of 2 CPUs, with SchedulerParameters=batch_sched_delay=0 to fill faster; they ran in "
                   f"{filled['ran_s']} s); slurmctld still held {held} jobs (MinJobAge). The API keeps finished jobs' "
                   "records: after its first (untimed) request, each reads slurmctld's /jobs/state and slurmdbd's "
                   "changes since the last read. The API runs on the control host "
                   f"(python {sys.version.split()[0]}, one uvicorn worker), requests over one keep-alive connection, "
                   "after 5 untimed ones. `GET /metrics` also reads 7 days of accounting (the spend per day)."])
    return Result(results, [table])
