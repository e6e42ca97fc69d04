"""slurmrestd client: JWT per request, Slurm's error codes mapped to API outcomes.

The OpenAPI version (the ``/slurm/<version>/`` prefix) is the newest one the
controller's slurmrestd offers that the API reads
(``slurmdata.SLURM_API_VERSIONS``): read from its own ``/openapi/v3``
document on first use, unless the configuration pins one. What is sent and
how replies are read in that version is its ``slurmdata.Dialect``.

Slurm's accounting (slurmdbd) is read through the same slurmrestd at
``/slurmdb/<version>/`` (its openapi/slurmdbd plugin), in the same version,
with ``slurmdata.AccountingDialect``; slurmdbd filters the jobs itself
(``start_time``, ``end_time``, ``state``, ``users``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jwt

from ..errors import UpstreamError
from ..secretfile import SecretFile
from ..slurmdata import (
    SLURM_API_VERSIONS,
    AccountingDialect,
    Dialect,
    Job,
    JobSpec,
    Node,
    accounting_dialect,
    dialect,
    listed_job,
)
from .http import HttpUpstream

#: Slurm's ESLURM_INVALID_JOB_ID ("Invalid job id specified").
INVALID_JOB_ID = 2017
#: Slurm's ESLURM_ALREADY_DONE ("Job/step already completing or completed"): v0.0.42 reports it when a
#: finished job is cancelled, where v0.0.38 to v0.0.41 answer a plain success.
ALREADY_DONE = 2021
#: slurmctld's own refusals (ESLURM_*: bad partition, impossible request...) are 2000-2999;
#: lower codes are communication failures (the controller is down).
_REFUSAL_CODES = range(2000, 3000)
TOKEN_LIFESPAN_SECONDS = 60
_VERSIONED_PATH = re.compile(r"^/slurm/(v\d+\.\d+\.\d+)/")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("v").split("."))


def offered_versions(document: Any) -> list[str]:
    """The ``/slurm/<version>/`` prefixes of a slurmrestd OpenAPI document, oldest first."""
    paths = document.get("paths") if isinstance(document, dict) else None
    found = {m.group(1) for m in map(_VERSIONED_PATH.match, paths or {}) if m}
    return sorted(found, key=_version_key)


def choose_version(offered: list[str]) -> str:
    """The newest offered version the API reads; UpstreamError naming both lists when there is none."""
    usable = [v for v in offered if v in SLURM_API_VERSIONS]
    if not usable:
        raise UpstreamError(
            "slurmrestd",
            f"slurmrestd offers the OpenAPI versions {', '.join(offered) or 'none'}, and the gpuops API reads "
            f"{', '.join(SLURM_API_VERSIONS)}: run a Slurm whose slurmrestd offers one of those",
        )
    return max(usable, key=_version_key)


class SlurmRefused(Exception):
    """slurmctld refused a request (a submission it cannot run); the message is Slurm's."""


def _errors(body: Any) -> list[dict[str, Any]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _codes(errors: list[dict[str, Any]]) -> set[int]:
    codes = set()
    for error in errors:
        for key in ("error_number", "error_code"):
            if isinstance(error.get(key), int):
                codes.add(error[key])
    return codes


def _kill_errors(body: Any) -> list[dict[str, Any]]:
    """v0.0.42's per-job outcome of a DELETE (``status: [{"error": {"code", "message"}, ...}]``) as errors."""
    status = body.get("status") if isinstance(body, dict) else None
    found = []
    for item in status if isinstance(status, list) else []:
        error = item.get("error") if isinstance(item, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), int) and error["code"] != 0:
            found.append({"error_number": error["code"], "error": error.get("message") or error.get("string")})
    return found


def _messages(errors: list[dict[str, Any]]) -> str:
    """Slurm's reason (``error``), with the longer ``description`` when that says more."""
    texts = []
    for error in errors:
        short, long = error.get("error"), error.get("description")
        short = short if isinstance(short, str) and short else None
        long = long if isinstance(long, str) and long else None
        if short and long and short not in long:
            text = f"{short} ({long})"
        else:
            text = long or short
        if text and text not in texts:
            texts.append(text)
    return "; ".join(texts) or "no error message"


class SlurmClient:
    """Calls slurmrestd as `user` with a fresh HS256 token for every request."""

    def __init__(self, http: HttpUpstream, version: str | None, user: str, key_file: SecretFile,
                 lifespan: int = TOKEN_LIFESPAN_SECONDS, clock: Callable[[], float] = time.time) -> None:
        if not 0 < lifespan <= TOKEN_LIFESPAN_SECONDS:
            raise ValueError(f"token lifespan must be 1..{TOKEN_LIFESPAN_SECONDS} seconds")
        if version is not None and version not in SLURM_API_VERSIONS:
            raise ValueError(f"slurm_api_version {version!r}: the API reads {', '.join(SLURM_API_VERSIONS)}")
        self.http = http
        self.version = version
        self.dialect: Dialect | None = dialect(version) if version is not None else None
        self.user = user
        self.key_file = key_file
        self.lifespan = lifespan
        self.clock = clock

    def _headers(self) -> dict[str, str]:
        try:
            key = self.key_file.read()
        except (OSError, ValueError) as err:
            raise UpstreamError("slurmrestd", self.key_file.problem() or str(err)) from None
        now = int(self.clock())
        token = jwt.encode({"exp": now + self.lifespan, "iat": now, "sun": self.user}, key, algorithm="HS256")
        return {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": token}

    async def prefix(self) -> str:
        """``/slurm/<version>``: the pinned version, else the newest usable one slurmrestd offers (asked once)."""
        await self._dialect()
        return f"/slurm/{self.version}"

    async def _dialect(self) -> Dialect:
        if self.dialect is None:
            response = await self.http.request("GET", "/openapi/v3", headers=self._headers())
            self._refused(response.status_code)
            version = choose_version(offered_versions(self.http.json(response)))
            self.version, self.dialect = version, dialect(version)
        return self.dialect

    @staticmethod
    def _refused(status: int) -> None:
        if status in (401, 403):
            raise UpstreamError(
                "slurmrestd",
                f"slurmrestd refused the API's token (HTTP {status}): slurm_jwt_key_file must hold "
                "the controller's JWT key (/var/spool/slurm/jwt_hs256.key)",
            )

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        prefix = await self.prefix()
        response = await self.http.request(method, prefix + path, headers=self._headers(), json=body)
        self._refused(response.status_code)
        data = self.http.json(response)
        if not isinstance(data, dict):
            raise UpstreamError("slurmrestd", f"slurmrestd answered {method} {path} with unexpected JSON")
        return response.status_code, data

    def _failed(self, what: str, status: int, data: dict[str, Any],
                errors: list[dict[str, Any]] | None = None) -> UpstreamError:
        reason = _messages(_errors(data) if errors is None else errors)
        return UpstreamError("slurmrestd", f"slurmrestd failed {what} (HTTP {status}): {reason}")

    async def _list(self, path: str, key: str) -> list[Any]:
        status, data = await self._call("GET", path)
        items = data.get(key)
        if status != 200 or not isinstance(items, list):
            raise self._failed(f"to list {key}", status, data)
        return [item for item in items if isinstance(item, dict)]

    async def jobs(self) -> list[Job]:
        items = await self._list("/jobs", "jobs")
        read = await self._dialect()
        return [read.parse_job(item) for item in items]

    async def job_states(self) -> list[tuple[int, str]] | None:
        """(job id, state) of every job slurmctld knows (``GET /jobs/state``: ids and states only, a hundredth of
        ``/jobs``); None where the version in use has no such list (before v0.0.42) or an entry cannot be read.
        An array's tasks that still wait in the array's own record list once each, under that record's id."""
        if (await self._dialect()).version != "v0.0.42":
            return None
        items = await self._list("/jobs/state", "jobs")
        listed = [listed_job(item) for item in items]
        return None if None in listed else [entry for entry in listed if entry is not None]

    async def nodes(self) -> list[Node]:
        items = await self._list("/nodes", "nodes")
        read = await self._dialect()
        return [read.parse_node(item) for item in items]

    async def job(self, job_id: int) -> Job | None:
        """One job, or None when Slurm does not know it (never was, or aged out after MinJobAge)."""
        status, data = await self._call("GET", f"/job/{job_id}")
        jobs = data.get("jobs")
        if status == 200 and isinstance(jobs, list) and jobs and isinstance(jobs[0], dict):
            # An array's own record answers with every task of the array: the job is the one with its id.
            own = next((item for item in jobs if isinstance(item, dict) and item.get("job_id") == job_id), jobs[0])
            return (await self._dialect()).parse_job(own)
        if INVALID_JOB_ID in _codes(_errors(data)) or (status == 200 and jobs == []):
            return None
        raise self._failed(f"to read job {job_id}", status, data)

    async def accounting(self) -> AccountingDialect | None:
        """How slurmdbd's records read in the version in use; None where the API does not read them (v0.0.38)."""
        return accounting_dialect((await self._dialect()).version)

    async def _db_call(self, path: str, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        await self._dialect()
        where = f"/slurmdb/{self.version}{path}"
        response = await self.http.request("GET", where, headers=self._headers(), params=params)
        self._refused(response.status_code)
        if response.status_code == 404 and "json" not in response.headers.get("content-type", ""):
            raise UpstreamError(
                "slurmrestd",
                f"slurmrestd does not serve {where}: it must load openapi/slurmdbd (slurmrestd -s "
                "openapi/slurmctld,openapi/slurmdbd) and reach slurmdbd (AccountingStorageType=accounting_storage/"
                "slurmdbd) for the job history",
            )
        data = self.http.json(response)
        if not isinstance(data, dict):
            raise UpstreamError("slurmrestd", f"slurmrestd answered GET {where} with unexpected JSON")
        return response.status_code, data

    async def accounted_jobs(self, since: int, until: int, state: str | None = None,
                             user: str | None = None) -> list[Job]:
        """slurmdbd's jobs that were pending or running at some time in [since, until) (sacct -S/-E), filtered
        by slurmdbd: with `state`, those in that state in the window (sacct -s), with `user`, that user's."""
        return [job for job, _ in await self.accounted_records(since, until, state, user)]

    async def accounted_records(self, since: int, until: int, state: str | None = None,
                                user: str | None = None) -> list[tuple[Job, int]]:
        """accounted_jobs, each with the time it became eligible (epoch seconds; 0: never).

        The API asks without job steps (skip_steps): a job's batch host is then the first of its nodes; and
        without truncating the times to the window (disable_truncate_usage_time; slurmdbd would otherwise report
        a job that started before `since` as started at `since`, and an unfinished one as ended at `until`).
        """
        read = await self.accounting()
        if read is None:
            raise UpstreamError("slurmrestd", f"the API reads Slurm's accounting in v0.0.42, "
                                              f"not {self.version}")
        params = {"start_time": str(max(since, 1)), "end_time": str(until), "skip_steps": "true",
                  "disable_truncate_usage_time": "true"}
        if state is not None:
            params["state"] = state
        if user is not None:
            params["users"] = user
        status, data = await self._db_call("/jobs", params)
        items = data.get("jobs")
        if status != 200 or not isinstance(items, list):
            raise self._failed("to list the accounted jobs", status, data)
        return [read.parse_record(item) for item in items if isinstance(item, dict)]

    async def accounted_job(self, job_id: int) -> Job | None:
        """One job as slurmdbd recorded it, or None when it has no record of it."""
        record = await self.accounted_record(job_id)
        return record[0] if record is not None else None

    async def accounted_record(self, job_id: int) -> tuple[Job, int] | None:
        """accounted_job, with the time the job became eligible (epoch seconds; 0: never)."""
        read = await self.accounting()
        if read is None:
            return None
        status, data = await self._db_call(f"/job/{job_id}")
        jobs = data.get("jobs")
        if status == 200 and isinstance(jobs, list):
            # A job id can repeat across clusters or after a reset of the ids: the newest submission is the job.
            found = [read.parse_record(item) for item in jobs
                     if isinstance(item, dict) and item.get("job_id") == job_id]
            return max(found, key=lambda record: record[0].submit_time or 0) if found else None
        if INVALID_JOB_ID in _codes(_errors(data)):
            return None
        raise self._failed(f"to read job {job_id} from the accounting", status, data)

    async def submit(self, spec: JobSpec) -> int:
        """The new job's id; SlurmRefused with Slurm's reason when slurmctld will not take the job."""
        write = await self._dialect()
        status, data = await self._call("POST", "/job/submit", write.submit_body(spec))
        job_id = write.submitted_id(data)
        if status == 200 and job_id is not None:
            return job_id
        errors = _errors(data)
        if _codes(errors) & set(_REFUSAL_CODES):
            raise SlurmRefused(_messages(errors))
        raise self._failed("to submit the job", status, data)

    async def cancel(self, job_id: int) -> bool:
        """Send SIGKILL to the job (what scancel does); False when Slurm does not know the job.

        A job that has already finished counts as cancelled (v0.0.38 to v0.0.41 answer a plain success then).
        """
        status, data = await self._call("DELETE", f"/job/{job_id}")
        errors = _errors(data) + _kill_errors(data)
        codes = _codes(errors)
        if status == 200 and codes <= {ALREADY_DONE}:
            return True
        if INVALID_JOB_ID in codes:
            return False
        raise self._failed(f"to cancel job {job_id}", status, data, errors)

    async def ping(self) -> str:
        """A one-line health summary; UpstreamError when slurmctld is not up."""
        status, data = await self._call("GET", "/ping")
        pings = (await self._dialect()).pings(data)
        if status != 200 or not pings:
            raise self._failed("to ping slurmctld", status, data)
        down = [p.hostname for p in pings if not p.up]
        if down:
            raise UpstreamError("slurmrestd", f"slurmctld on {', '.join(down)} does not answer slurmrestd's ping")
        return "slurmctld " + ", ".join(f"{p.hostname} {p.mode} UP" for p in pings)
