"""A labelled TEST STAND-IN for the gpuops API (app/api), for the browser harness only.

It serves the API contract the web frontend uses (docs: the service-plane contract)
from an in-memory model so the harness can be proven without pods, Slurm or
Prometheus: two pods with one GPU each, synthetic GPU metrics, and jobs that go
PENDING -> RUNNING -> COMPLETED (or FAILED with the code of the script's last
``exit N``; the run time is the sum of the script's ``sleep N``). A switch
simulates an upstream outage (503 {"detail", "upstream"}):

    POST /_fake/outage {"upstream": "slurmrestd"|"prometheus"|"cloud"|"ssh"|"api", "down": true|false}

("api" answers every API call without CORS headers, so the browser's fetch fails
as when the API is down.)

It is never deployed; the real API is tested against the real stack.

Run: python -m tests.browser.fake_api --port 18081 --token-file FILE --cors-origin http://127.0.0.1:18080
"""

from __future__ import annotations

import argparse
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

PENDING_SECONDS = 1.0
DEFAULT_RUN_SECONDS = 2.0
MAX_RUN_SECONDS = 3600.0
MEM_TOTAL_MIB = 24564.0
PARTITIONS = ("gpu",)
DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class FakePod:
    name: str
    id: str
    role: str
    gpu_type: str
    cost_per_hr: float


PODS = (
    FakePod("gpuops-controller", "fakepod0ctl01", "controller", "NVIDIA GeForce RTX 4090", 0.69),
    FakePod("gpuops-compute-1", "fakepod0cmp01", "compute", "NVIDIA GeForce RTX 4090", 0.69),
)


@dataclass
class FakeJob:
    id: int
    name: str
    script: str
    nodes: int
    gpus_per_node: int
    time_limit_minutes: int
    partition: str | None
    submit_time: float
    run_seconds: float
    exit_code: int
    cancelled_at: float | None = None

    @property
    def start_time(self) -> float:
        return self.submit_time + PENDING_SECONDS

    @property
    def node_names(self) -> list[str]:
        return [pod.id for pod in PODS[: max(1, min(self.nodes, len(PODS)))]]

    def end_time(self) -> float | None:
        natural_end = self.start_time + self.run_seconds
        if self.cancelled_at is not None:
            return min(self.cancelled_at, natural_end)
        return natural_end

    def state(self, now: float) -> str:
        natural_end = self.start_time + self.run_seconds
        if self.cancelled_at is not None and self.cancelled_at < natural_end:
            return "CANCELLED"
        if now < self.start_time:
            return "PENDING"
        if now < natural_end:
            return "RUNNING"
        return "COMPLETED" if self.exit_code == 0 else "FAILED"

    def output_lines(self) -> list[str]:
        host = self.node_names[0]
        lines = []
        for match in re.finditer(r"^\s*echo\s+(.*)$", self.script, re.MULTILINE):
            text = match.group(1).strip()
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
                text = text[1:-1]
            lines.append(text.replace("$(hostname)", host).replace("$SLURM_JOB_ID", str(self.id)))
        return lines

    def as_api(self, now: float) -> dict:
        state = self.state(now)
        started = state != "PENDING"
        finished = state in ("COMPLETED", "FAILED", "CANCELLED")
        exit_code = None
        if finished:
            exit_code = self.exit_code if state != "CANCELLED" else 0
        return {
            "id": self.id,
            "name": self.name,
            "user": "root",
            "state": state,
            "reason": "Priority" if state == "PENDING" else "None",
            "exit_code": exit_code,
            "nodes": ",".join(self.node_names) if started else "",
            "node_count": len(self.node_names),
            "gpus": self.gpus_per_node * len(self.node_names),  # the whole job's, as the API reports it
            "partition": self.partition or "gpu",
            "submit_time": int(self.submit_time),
            "start_time": int(self.start_time) if started else None,
            "end_time": int(self.end_time() or 0) if finished else None,
            "time_limit_minutes": self.time_limit_minutes,
            "stdout_path": f"/var/lib/gpuops/jobs/api/slurm-{self.id}.out",
            "batch_host": self.node_names[0] if started else None,
        }


@dataclass
class FakeState:
    token: str
    grafana_url: str | None
    started: float = field(default_factory=time.time)
    outages: set[str] = field(default_factory=set)
    jobs: dict[int, FakeJob] = field(default_factory=dict)
    next_id: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)


class JobIn(BaseModel):
    # As the real API: an unknown field (the old `gpus`) is refused, never ignored.
    model_config = ConfigDict(extra="forbid")

    script: str = Field(min_length=2)
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    nodes: int = Field(default=1, ge=1, le=64)
    gpus_per_node: int = Field(default=0, ge=0, le=64)
    time_limit_minutes: int = Field(default=60, ge=1, le=10080)
    partition: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")

    @field_validator("script")
    @classmethod
    def _shebang(cls, value: str) -> str:
        if not value.startswith("#!"):
            raise ValueError('the script must start with "#!" (an interpreter line such as #!/bin/bash)')
        return value


class OutageIn(BaseModel):
    upstream: Literal["slurmrestd", "prometheus", "cloud", "ssh", "api"]
    down: bool


def parse_range(value: str) -> int:
    match = DURATION_RE.match(value)
    seconds = int(match.group(1)) * DURATION_UNITS[match.group(2)] if match else 0
    if not 60 <= seconds <= 7 * 86400:
        raise HTTPException(422, f"range {value!r} must be a Prometheus duration from 1m to 7d, e.g. 15m")
    return seconds


def synthetic(metric: str, gpu_index: int, t: float, busy: bool) -> float:
    wave = math.sin(t / 45.0 + gpu_index * 1.7)
    if metric == "util_percent":
        return round(92 + 6 * wave, 1) if busy else round(max(0.0, 8 + 6 * wave), 1)
    if metric == "mem_used_mib":
        return round((18000 if busy else 900) + 300 * wave)
    if metric == "temp_c":
        return round((71 if busy else 38) + 3 * wave)
    return round((310 if busy else 28) + 15 * wave, 1)  # power_w


def create_app(state: FakeState, cors_origins: list[str]) -> FastAPI:
    app = FastAPI(title="gpuops API (fake, browser harness only)", version="fake-0")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )

    @app.middleware("http")
    async def _api_down(request, call_next):  # outside CORS: its answer carries no CORS headers
        if "api" in state.outages and request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "fake outage of the whole API"}, status_code=502)
        return await call_next(request)

    def auth(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {state.token}"
        if authorization is None or not secrets.compare_digest(authorization.encode(), expected.encode()):
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    def upstream(name: str) -> None:
        if name in state.outages:
            detail = {
                "slurmrestd": "slurmrestd at http://127.0.0.1:19401 did not answer: connection refused (fake outage)",
                "prometheus": "Prometheus at http://127.0.0.1:9090 did not answer: connection refused (fake outage)",
                "cloud": "the cloud API at http://127.0.0.1:8765/v1 did not answer (fake outage)",
                "ssh": "SSH to the batch host failed: connection refused (fake outage)",
            }[name]
            raise UpstreamDown(name, detail)

    class UpstreamDown(Exception):
        def __init__(self, name: str, detail: str) -> None:
            super().__init__(detail)
            self.name = name
            self.detail = detail

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError) -> JSONResponse:
        # The real API's shape: one string, "body field 'name': message; ...".
        problems = []
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            where = f"body field '{'.'.join(loc[1:])}'" if loc[:1] == ["body"] else ".".join(loc)
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(UpstreamDown)
    async def _upstream_down(_request, exc: UpstreamDown) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "upstream": exc.name}, status_code=503)

    def busy_gpus(now: float) -> dict[str, int]:
        """Pod id -> job id for GPUs held by a running job."""
        held: dict[str, int] = {}
        for job in state.jobs.values():
            if job.gpus_per_node > 0 and job.state(now) == "RUNNING":
                for node in job.node_names:
                    held[node] = job.id
        return held

    def job_or_404(job_id: int) -> FakeJob:
        job = state.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"job {job_id} is unknown to Slurm (finished jobs are forgotten after MinJobAge)")
        return job

    secured = [Depends(auth)]

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/v1/info", dependencies=secured)
    def info() -> dict:
        base = state.grafana_url
        dashboards = (
            {
                k: f"{base}/d/{uid}"
                for k, uid in (("fleet", "gpuops-gpu-fleet"), ("jobs", "gpuops-gpu-jobs"), ("slurm", "gpuops-slurm"))
            }
            if base
            else {}
        )
        return {"version": "fake-0", "cloud": "fake", "grafana_url": base, "dashboards": dashboards}

    @app.get("/api/v1/pods", dependencies=secured)
    def pods() -> dict:
        upstream("cloud")
        uptime = int(time.time() - state.started) + 3600
        items = [
            {
                "name": p.name,
                "id": p.id,
                "status": "RUNNING",
                "role": p.role,
                "gpu_type": p.gpu_type,
                "gpu_count": 1,
                "cost_per_hr": p.cost_per_hr,
                "uptime_seconds": uptime,
                "cost_so_far": round(p.cost_per_hr * uptime / 3600, 4),
                "public_ip": "127.0.0.1",
                "ssh_port": 22000 + i,
            }
            for i, p in enumerate(PODS)
        ]
        return {"pods": items, "cost_per_hr_total": round(sum(p.cost_per_hr for p in PODS), 4)}

    @app.get("/api/v1/gpus", dependencies=secured)
    def gpus() -> dict:
        upstream("prometheus")
        now = time.time()
        held = busy_gpus(now)
        return {
            "gpus": [
                {
                    "pod": p.name,
                    "gpu": "0",
                    "uuid": f"GPU-fake-{p.id}",
                    "model": p.gpu_type,
                    "util_percent": synthetic("util_percent", i, now, p.id in held),
                    "mem_used_mib": synthetic("mem_used_mib", i, now, p.id in held),
                    "mem_total_mib": MEM_TOTAL_MIB,
                    "temp_c": synthetic("temp_c", i, now, p.id in held),
                    "power_w": synthetic("power_w", i, now, p.id in held),
                    "hpc_job": str(held[p.id]) if p.id in held else None,
                }
                for i, p in enumerate(PODS)
            ]
        }

    def history(range_: str, step: int | None, job: FakeJob | None) -> dict:
        seconds = parse_range(range_)
        end = int(time.time())
        start = end - seconds
        step = step or max(5, round(seconds / 120))
        series = []
        for i, p in enumerate(PODS):
            if job is not None and (job.gpus_per_node == 0 or p.id not in job.node_names):
                continue
            for metric in ("util_percent", "mem_used_mib", "temp_c", "power_w"):
                points = []
                for t in range(start - start % step, end + 1, step):
                    if t < start:
                        continue
                    busy = any(
                        j.gpus_per_node > 0 and p.id in j.node_names and j.start_time <= t <= (j.end_time() or end)
                        for j in ([job] if job else state.jobs.values())
                    )
                    if job is not None and not busy:
                        continue
                    points.append([t, synthetic(metric, i, t, busy)])
                if points:
                    series.append({"pod": p.name, "gpu": "0", "metric": metric, "points": points})
        return {"start": start, "end": end, "step": step, "series": series}

    @app.get("/api/v1/gpus/history", dependencies=secured)
    def gpus_history(range: str = "15m", step: Annotated[int | None, Query(ge=5)] = None) -> dict:  # noqa: A002
        upstream("prometheus")
        return history(range, step, None)

    @app.get("/api/v1/jobs", dependencies=secured)
    def jobs(
        state_: Annotated[str | None, Query(alias="state")] = None,
        user: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        upstream("slurmrestd")
        now = time.time()
        items = [j.as_api(now) for j in sorted(state.jobs.values(), key=lambda j: j.id, reverse=True)]
        if state_:
            items = [j for j in items if j["state"] == state_.upper()]
        if user:
            items = [j for j in items if j["user"] == user]
        return {"jobs": items[offset : offset + limit], "total": len(items)}

    @app.post("/api/v1/jobs", status_code=201, dependencies=secured)
    def submit(body: JobIn) -> dict:
        upstream("slurmrestd")
        if body.partition is not None and body.partition not in PARTITIONS:
            raise HTTPException(400, f"Slurm rejected the job: invalid partition specified: {body.partition}")
        sleeps = sum(float(s) for s in re.findall(r"^\s*sleep\s+(\d+(?:\.\d+)?)\s*$", body.script, re.MULTILINE))
        exits = re.findall(r"^\s*exit\s+(\d+)\s*$", body.script, re.MULTILINE)
        with state.lock:
            job_id = state.next_id
            state.next_id += 1
            state.jobs[job_id] = FakeJob(
                id=job_id,
                name=body.name,
                script=body.script,
                nodes=body.nodes,
                gpus_per_node=body.gpus_per_node,
                time_limit_minutes=body.time_limit_minutes,
                partition=body.partition,
                submit_time=time.time(),
                run_seconds=min(sleeps, MAX_RUN_SECONDS) if sleeps else DEFAULT_RUN_SECONDS,
                exit_code=int(exits[-1]) if exits else 0,
            )
        return {"id": job_id}

    @app.get("/api/v1/jobs/{job_id}", dependencies=secured)
    def job(job_id: int) -> dict:
        upstream("slurmrestd")
        return job_or_404(job_id).as_api(time.time())

    @app.delete("/api/v1/jobs/{job_id}", status_code=202, dependencies=secured)
    def cancel(job_id: int) -> dict:
        upstream("slurmrestd")
        found = job_or_404(job_id)
        now = time.time()
        if found.state(now) in ("COMPLETED", "FAILED", "CANCELLED"):
            raise HTTPException(409, f"job {job_id} already finished ({found.state(now)})")
        found.cancelled_at = now
        return {"id": job_id, "cancelled": True}

    @app.get("/api/v1/jobs/{job_id}/output", dependencies=secured)
    def output(job_id: int, lines: Annotated[int, Query(ge=1, le=10000)] = 200) -> dict:
        upstream("slurmrestd")
        found = job_or_404(job_id)
        now = time.time()
        if found.state(now) == "PENDING":
            raise HTTPException(409, f"job {job_id} has not started (PENDING): it has no output yet")
        upstream("ssh")
        all_lines = found.output_lines()
        if found.state(now) == "RUNNING":
            shown = max(1, int(len(all_lines) * (now - found.start_time) / max(found.run_seconds, 0.1)))
            all_lines = all_lines[:shown]
        tail = all_lines[-lines:]
        text = "\n".join(tail) + ("\n" if tail else "")
        return {"id": job_id, "text": text, "lines": len(tail), "truncated": len(all_lines) > lines}

    @app.get("/api/v1/jobs/{job_id}/gpus", dependencies=secured)
    def job_gpus(job_id: int, range: str = "15m") -> dict:  # noqa: A002
        upstream("slurmrestd")
        found = job_or_404(job_id)
        upstream("prometheus")
        return history(range, None, found)

    @app.post("/_fake/outage", dependencies=secured)
    def outage(body: OutageIn) -> dict:
        if body.down:
            state.outages.add(body.upstream)
        else:
            state.outages.discard(body.upstream)
        return {"outages": sorted(state.outages)}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake gpuops API for the browser harness test (not the real API).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True, help="file holding the bearer token")
    parser.add_argument("--cors-origin", action="append", default=[], help="web origin allowed by CORS (repeat)")
    parser.add_argument("--grafana-url", default=None, help="pretend Grafana runs here (links only)")
    args = parser.parse_args(argv)
    token = args.token_file.read_text(encoding="utf-8").strip()
    if not token:
        parser.error(f"{args.token_file} is empty")
    state = FakeState(token=token, grafana_url=args.grafana_url)
    uvicorn.run(create_app(state, args.cors_origin), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
