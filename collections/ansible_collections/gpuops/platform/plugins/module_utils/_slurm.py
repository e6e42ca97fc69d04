# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run Slurm's client commands for gpuops.platform.

Every call to sbatch, scontrol, sacct and scancel goes through
``SlurmCommands``: commands are argument lists run by ``module.run_command``
(never a shell, no ``~`` or ``$VAR`` expansion), answers are parsed into small
dataclasses and failures raise typed errors whose message a user can act on.

Job state lookup, in order:

1. ``scontrol show job ID --json`` (Slurm 23.02 and later). Slurm 22.05, the
   version gpuops runs, answers ``unrecognized option '--json'``; the wrapper
   remembers that and uses
2. ``scontrol show job -o ID``, the one-line ``Key=Value`` form that every
   version prints. Either way slurmctld only knows a job until MinJobAge
   seconds (default 300) after it ended.
3. ``sacct`` when accounting is enabled (gpuops runs no slurmdbd, so it
   usually is not). The parsable text form is used: Slurm 22.05's
   ``sacct --json`` reports ``return_code: 0`` for a job that exited 3.

Private to the collection: the interface may change without notice.
"""

from __future__ import annotations

import json
import os
import re
import time
import typing as t

from dataclasses import dataclass, field


SETUP_HINT = (
    "run the task on the Slurm controller (the host of slurmctld), where Slurm's client "
    "commands are installed (Debian package slurm-client)"
)

# Job states as Slurm names them (job_state_string in src/common/slurm_protocol_defs.c).
TERMINAL_STATES = frozenset((
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
))
# States in which scancel still has something to stop. COMPLETING, SIGNALING
# and STAGE_OUT jobs are already on their way out.
CANCELLABLE_STATES = frozenset((
    "PENDING", "RUNNING", "SUSPENDED", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESV_DEL_HOLD", "RESIZING", "STOPPED",
))

_TIME_SPEC = re.compile(
    r"^(?:"
    r"\d+"                              # minutes
    r"|\d+:\d{1,2}"                     # minutes:seconds
    r"|\d+:\d{1,2}:\d{1,2}"             # hours:minutes:seconds
    r"|\d+-\d+"                         # days-hours
    r"|\d+-\d+:\d{1,2}"                 # days-hours:minutes
    r"|\d+-\d+:\d{1,2}:\d{1,2}"         # days-hours:minutes:seconds
    r"|UNLIMITED|INFINITE|-1"
    r")",
    re.IGNORECASE,
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A key of `scontrol show job -o`: JobId, AllocNode:Sid, CPUs/Task, ReqB:S:C:T ...
_SCONTROL_KEY = re.compile(r"^[A-Z][A-Za-z0-9_]*(?:[:/][A-Za-z0-9_*]+)*$")
_SACCT_FIELDS = ("JobIDRaw", "State", "ExitCode", "NodeList", "ElapsedRaw", "Partition", "WorkDir", "Reason", "JobName")
_EXCERPT = 4000


class SlurmError(Exception):
    """A Slurm command could not be run, failed, or printed something unexpected."""

    def __init__(self, message: str, cmd: list[str] | None = None, rc: int | None = None, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.cmd = list(cmd or [])
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class SlurmNotFound(SlurmError):
    """A Slurm client command is not installed on this host."""


class SlurmCommandFailed(SlurmError):
    """A command exited non-zero. ``message`` is its stderr, verbatim."""


class SlurmParseError(SlurmError):
    """A command succeeded but its output is not what this wrapper understands."""


class SlurmJobUnknown(SlurmError):
    """Neither slurmctld nor the accounting database knows the job."""


@dataclass(frozen=True)
class SlurmJob:
    """What gpuops needs to know about one job."""

    job_id: int
    state: str
    name: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    nodelist: str = ""
    elapsed: int | None = None
    partition: str | None = None
    batch_host: str | None = None
    work_dir: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    # The administrator's comment (gpuops' PrologSlurmctld records the GPU
    # price there) and the allocated trackable resources, e.g.
    # ``cpu=1,node=1,billing=1,gres/gpu=1``; None when the source has none.
    admin_comment: str | None = None
    alloc_tres: str | None = None
    source: str = "scontrol"

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def cancellable(self) -> bool:
        return self.state in CANCELLABLE_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETED"


@dataclass(frozen=True)
class Submission:
    """A job that sbatch accepted."""

    job_id: int
    cluster: str | None
    cmd: list[str]
    stderr: str = ""


@dataclass
class SbatchRequest:
    """The options of one submission; ``options()`` renders them as sbatch arguments.

    Every value is passed as a single ``--name=value`` element, so a value that
    starts with ``-`` or holds shell metacharacters stays one argument.

    Environment variables travel in sbatch's own environment with
    ``--export=ALL``: their values (commas, newlines, quotes) never appear on a
    command line. Not ``--export=ALL,NAME,...``: any export list makes sbatch set
    SLURM_GET_USER_ENV=1 (recorded on 22.05), so slurmd rebuilds root's login
    environment on the node, and Slurm 24.11's slurmd dies with ``fatal: clone:
    Operation not permitted`` doing that in an unprivileged container.
    """

    script: str
    job_name: str | None = None
    partition: str | None = None
    nodes: int | None = None
    ntasks: int | None = None
    # GPUs for the whole job (--gpus), or on each of its nodes (--gpus-per-node); 0 or None adds nothing.
    gpus: int | None = None
    gpus_per_node: int | None = None
    time: str | None = None
    chdir: str | None = None
    output: str | None = None
    error: str | None = None
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)

    def options(self) -> list[str]:
        args = []
        for flag, value in (
            ("--job-name", self.job_name),
            ("--partition", self.partition),
            ("--nodes", self.nodes),
            ("--ntasks", self.ntasks),
            ("--gpus", self.gpus or None),
            ("--gpus-per-node", self.gpus_per_node or None),
            ("--time", self.time),
            ("--export", "ALL" if self.env else None),
            ("--chdir", self.chdir),
            ("--output", self.output),
            ("--error", self.error),
            ("--uid", self.user),
        ):
            if value is not None:
                args.append("%s=%s" % (flag, value))
        args.extend(self.extra_args)
        return args


# -- validation -------------------------------------------------------------------------


def validate_time_spec(value: str) -> None:
    """Raise ValueError unless ``value`` is a time limit that sbatch accepts."""
    if not _TIME_SPEC.fullmatch(value):
        raise ValueError(
            "time %r is not a Slurm time limit: use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, "
            "D-HH:MM:SS or UNLIMITED (for example 90, 1:30:00 or 2-00:00:00)" % value)


def validate_env(env: dict[str, t.Any]) -> dict[str, str]:
    """Environment names must be identifiers; values become strings."""
    result = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValueError("env name %r is not a valid environment variable name (letters, digits, _; not starting with a digit)" % (name,))
        if value is None:
            raise ValueError("env %s has no value; use an empty string for an empty variable" % name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        value = str(value)
        if "\x00" in value:
            raise ValueError("env %s holds a NUL character, which no environment variable can hold" % name)
        result[name] = value
    return result


# -- parsers ----------------------------------------------------------------------------


def parse_exit_code(text: str | None) -> tuple[int | None, int | None]:
    """``"3:0"`` (exit code : signal) as ``(3, 0)``; anything else as ``(None, None)``."""
    match = re.match(r"^\s*(\d+):(\d+)\s*$", text or "")
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2))


def parse_duration(text: str | None) -> int | None:
    """``[D-]HH:MM:SS`` (or ``MM:SS``) as seconds; ``None`` for ``INVALID``, ``UNLIMITED``, empty."""
    match = re.match(r"^\s*(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)\s*$", text or "")
    if not match:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_sbatch_parsable(stdout: str) -> tuple[int, str | None]:
    """``sbatch --parsable`` prints ``ID`` or ``ID;CLUSTER``."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if lines:
        job_id, _sep, cluster = lines[-1].partition(";")
        if job_id.isdigit():
            return int(job_id), cluster or None
    raise ValueError("sbatch --parsable printed %r, not a job id" % stdout.strip()[:200])


def parse_scontrol_records(text: str) -> list[dict[str, str]]:
    """Records of ``scontrol show -o``: one line per record, ``Key=Value`` fields.

    Values may hold spaces (``JobName=train; echo x``, ``StdOut=/data/my run.out``).
    A space-separated token starts a new field only when it looks like one of
    Slurm's keys (``Key=...`` with an upper-case first letter); any other token
    continues the previous value. When a key repeats, the later one wins: a job
    name such as ``x JobState=COMPLETED`` cannot hide the real ``JobState``,
    which Slurm prints after the name.
    """
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        record: dict[str, str] = {}
        key = None
        for token in line.strip().split(" "):
            name, sep, value = token.partition("=")
            if sep and _SCONTROL_KEY.match(name):
                key = name
                record[key] = value
            elif key is not None:
                record[key] += " " + token
        records.append(record)
    return records


def _null(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "(null)", "None", "None assigned") else value


def _state_word(value: t.Any) -> str:
    """``COMPLETED``, ``CANCELLED by 0`` (sacct) or ``["RUNNING", "COMPLETING"]`` (JSON) as one state."""
    if isinstance(value, list):
        words = [str(v) for v in value]
        # Slurm prints a flag such as COMPLETING instead of the base state while it is set
        for flag in ("COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "REQUEUED", "RESIZING", "STOPPED"):
            if flag in words:
                return flag
        return words[0] if words else "UNKNOWN"
    text = str(value or "").strip()
    return text.split()[0].upper() if text else "UNKNOWN"


def job_from_scontrol_record(record: dict[str, str]) -> SlurmJob:
    """A job from one record of ``scontrol show job -o``."""
    try:
        job_id = int(record["JobId"])
    except (KeyError, ValueError):
        raise ValueError("record without a numeric JobId") from None
    exit_code, signal = parse_exit_code(record.get("ExitCode"))
    return SlurmJob(
        job_id=job_id,
        name=record.get("JobName"),
        state=_state_word(record.get("JobState")),
        reason=_null(record.get("Reason")),
        exit_code=exit_code,
        signal=signal,
        nodelist=_null(record.get("NodeList")) or "",
        elapsed=parse_duration(record.get("RunTime")),
        partition=_null(record.get("Partition")),
        batch_host=_null(record.get("BatchHost")),
        work_dir=_null(record.get("WorkDir")),
        stdout_path=_null(record.get("StdOut")),
        stderr_path=_null(record.get("StdErr")),
        admin_comment=_null(record.get("AdminComment")),
        # AllocTRES since Slurm 23.02, TRES before
        alloc_tres=_null(record.get("AllocTRES", record.get("TRES"))),
        source="scontrol",
    )


def _number(value: t.Any) -> int | None:
    """Slurm JSON numbers: plain, or ``{"set": true, "infinite": false, "number": N}`` (data_parser v0.0.40+)."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_exit_code(value: t.Any) -> tuple[int | None, int | None]:
    """``exit_code`` of Slurm JSON: a raw wait status (v0.0.38) or a structure (v0.0.39+)."""
    if isinstance(value, dict):
        code = _number(value.get("return_code"))
        signal = value.get("signal")
        sig = (_number(signal.get("id")) if isinstance(signal, dict) else _number(signal)) or 0
        if code is None and sig:
            code = 0  # killed by a signal: Slurm prints ExitCode=0:SIGNAL
        return code, sig
    status = _number(value)
    if status is None:
        return None, None
    if status & 0x7F:
        return 0, status & 0x7F  # WIFSIGNALED: Slurm reports 0:SIGNAL
    return (status >> 8) & 0xFF, 0


def job_from_scontrol_json(data: t.Any, job_id: int) -> SlurmJob | None:
    """The job ``job_id`` from ``scontrol show job --json``; None when it is not there."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValueError("no jobs list")
    for job in data["jobs"]:
        if not isinstance(job, dict) or _number(job.get("job_id")) != job_id:
            continue
        exit_code, signal = _json_exit_code(job.get("exit_code"))
        start = _number(job.get("start_time"))
        end = _number(job.get("end_time"))
        state = _state_word(job.get("job_state"))
        elapsed = None
        if start:
            if state in TERMINAL_STATES and end and end >= start:
                elapsed = end - start
            elif state not in TERMINAL_STATES and state != "PENDING":
                elapsed = max(0, int(time.time()) - start)
            else:
                elapsed = 0
        elif state == "PENDING":
            elapsed = 0
        return SlurmJob(
            job_id=job_id,
            name=job.get("name"),
            state=state,
            reason=_null(job.get("state_reason")),
            exit_code=exit_code,
            signal=signal,
            nodelist=_null(job.get("nodes")) or "",
            elapsed=elapsed,
            partition=_null(job.get("partition")),
            batch_host=_null(job.get("batch_host")),
            work_dir=_null(job.get("current_working_directory")),
            stdout_path=_null(job.get("standard_output")),
            stderr_path=_null(job.get("standard_error")),
            admin_comment=_null(job.get("admin_comment")),
            alloc_tres=_null(job.get("tres_alloc_str")),
            source="scontrol",
        )
    return None


def job_from_sacct(stdout: str, job_id: int) -> SlurmJob | None:
    """The job from ``sacct -X -n -P -o <_SACCT_FIELDS>``; JobName is last, so it may hold ``|``."""
    for line in stdout.splitlines():
        if not line.strip():
            continue
        values = line.split("|", len(_SACCT_FIELDS) - 1)
        if len(values) != len(_SACCT_FIELDS):
            raise ValueError("sacct line %r does not have %d fields" % (line[:200], len(_SACCT_FIELDS)))
        row = dict(zip(_SACCT_FIELDS, values))
        if row["JobIDRaw"].strip() != str(job_id):
            continue
        exit_code, signal = parse_exit_code(row["ExitCode"])
        elapsed = row["ElapsedRaw"].strip()
        return SlurmJob(
            job_id=job_id,
            name=row["JobName"],
            state=_state_word(row["State"]),
            reason=_null(row["Reason"]),
            exit_code=exit_code,
            signal=signal,
            nodelist=_null(row["NodeList"]) or "",
            elapsed=int(elapsed) if elapsed.isdigit() else None,
            partition=_null(row["Partition"]),
            work_dir=_null(row["WorkDir"]),
            source="sacct",
        )
    return None


def tail_file(path: str, lines: int, max_bytes: int = 1024 * 1024) -> str:
    """The last ``lines`` lines of a file (reading at most ``max_bytes`` from its end). Raises OSError."""
    if lines <= 0:
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    parts = text.splitlines()
    if start > 0 and parts:
        parts = parts[1:]  # the first line is probably cut
    return "\n".join(parts[-lines:])


def _excerpt(text: str) -> str:
    text = text.strip()
    if len(text) > _EXCERPT:
        text = "..." + text[-_EXCERPT:]
    return text


# -- the wrapper ------------------------------------------------------------------------


class SlurmCommands:
    """Slurm's client commands, run through an AnsibleModule's ``run_command``."""

    def __init__(self, module: t.Any) -> None:
        self.module = module
        self._paths: dict[str, str] = {}
        self._scontrol_json: bool | None = None  # None: not tried yet
        self.accounting: bool | None = None  # None: sacct not asked yet

    def binary(self, name: str) -> str:
        """The path of a Slurm command, or SlurmNotFound."""
        if name not in self._paths:
            path = self.module.get_bin_path(name)
            if not path:
                raise SlurmNotFound("%s not found on this host: %s" % (name, SETUP_HINT), cmd=[name])
            self._paths[name] = path
        return self._paths[name]

    def run(self, cmd: list[str], environ_update: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run an argument list: no shell, no ``~``/``$VAR`` expansion. Returns (rc, stdout, stderr)."""
        rc, stdout, stderr = self.module.run_command(
            cmd,
            check_rc=False,
            environ_update=environ_update or {},
            expand_user_and_vars=False,
        )
        return rc, stdout or "", stderr or ""

    def _failed(self, cmd: list[str], rc: int, stdout: str, stderr: str) -> SlurmCommandFailed:
        message = _excerpt(stderr) or _excerpt(stdout) or "%s exited with rc=%d and printed nothing" % (os.path.basename(cmd[0]), rc)
        return SlurmCommandFailed(message, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)

    # sbatch

    def sbatch_command(self, request: SbatchRequest, test_only: bool = False) -> list[str]:
        mode = "--test-only" if test_only else "--parsable"
        return [self.binary("sbatch"), mode] + request.options() + [request.script]

    def submit(self, request: SbatchRequest) -> Submission:
        """``sbatch --parsable``. SlurmCommandFailed carries sbatch's stderr verbatim."""
        cmd = self.sbatch_command(request)
        rc, stdout, stderr = self.run(cmd, environ_update=request.env)
        if rc != 0:
            raise self._failed(cmd, rc, stdout, stderr)
        try:
            job_id, cluster = parse_sbatch_parsable(stdout)
        except ValueError as err:
            raise SlurmParseError(str(err), cmd=cmd, rc=rc, stdout=stdout, stderr=stderr) from None
        return Submission(job_id=job_id, cluster=cluster, cmd=cmd, stderr=stderr.strip())

    def test_only(self, request: SbatchRequest) -> str:
        """``sbatch --test-only``: validates the request and estimates a start without submitting.

        Returns sbatch's answer (``sbatch: Job 12 to start at ...``).
        """
        cmd = self.sbatch_command(request, test_only=True)
        rc, stdout, stderr = self.run(cmd, environ_update=request.env)
        if rc != 0:
            raise self._failed(cmd, rc, stdout, stderr)
        return (stderr.strip() or stdout.strip())

    # job state

    def _scontrol_show_json(self, job_id: int) -> SlurmJob | None:
        cmd = [self.binary("scontrol"), "show", "job", str(job_id), "--json"]
        rc, stdout, stderr = self.run(cmd)
        if rc != 0:
            if "unrecognized option" in stderr or "invalid option" in stderr:
                self._scontrol_json = False  # Slurm before 23.02
                return self._scontrol_show_text(job_id)
            if "Invalid job id" in stderr:
                return None
            raise self._failed(cmd, rc, stdout, stderr)
        self._scontrol_json = True
        try:
            return job_from_scontrol_json(json.loads(stdout), job_id)
        except ValueError as err:
            raise SlurmParseError("`scontrol show job %d --json` printed something that is not its JSON: %s" % (job_id, err),
                                  cmd=cmd, rc=rc, stdout=stdout, stderr=stderr) from None

    def _scontrol_show_text(self, job_id: int) -> SlurmJob | None:
        cmd = [self.binary("scontrol"), "show", "job", "-o", str(job_id)]
        rc, stdout, stderr = self.run(cmd)
        if rc != 0:
            if "Invalid job id" in stderr:
                return None
            raise self._failed(cmd, rc, stdout, stderr)
        for record in parse_scontrol_records(stdout):
            if record.get("JobId") == str(job_id):
                try:
                    return job_from_scontrol_record(record)
                except ValueError as err:
                    raise SlurmParseError("cannot read `scontrol show job -o %d`: %s" % (job_id, err),
                                          cmd=cmd, rc=rc, stdout=stdout, stderr=stderr) from None
        return None

    def scontrol_job(self, job_id: int) -> SlurmJob | None:
        """The job as slurmctld knows it; None once it is gone (MinJobAge after its end)."""
        if self._scontrol_json is False:
            return self._scontrol_show_text(job_id)
        return self._scontrol_show_json(job_id)

    def sacct_job(self, job_id: int) -> SlurmJob | None:
        """The job from the accounting database; None when accounting is off or does not know it."""
        try:
            sacct = self.binary("sacct")
        except SlurmNotFound:
            self.accounting = False
            return None
        cmd = [sacct, "--allocations", "--noheader", "--parsable2", "--jobs", str(job_id),
               "--format", ",".join(_SACCT_FIELDS)]
        rc, stdout, stderr = self.run(cmd)
        if rc != 0:
            if "accounting storage is disabled" in stderr.lower():
                self.accounting = False
                return None
            raise self._failed(cmd, rc, stdout, stderr)
        self.accounting = True
        try:
            return job_from_sacct(stdout, job_id)
        except ValueError as err:
            raise SlurmParseError("cannot read sacct's answer for job %d: %s" % (job_id, err),
                                  cmd=cmd, rc=rc, stdout=stdout, stderr=stderr) from None

    def job(self, job_id: int) -> SlurmJob:
        """The job's state from slurmctld, else from accounting, else SlurmJobUnknown."""
        found = self.scontrol_job(job_id)
        if found is None:
            found = self.sacct_job(job_id)
        if found is None:
            if self.accounting:
                raise SlurmJobUnknown(
                    "Slurm does not know job %d: neither slurmctld nor the accounting database (sacct) has it. "
                    "Check the job id and the cluster" % job_id)
            raise SlurmJobUnknown(
                "Slurm does not know job %d: slurmctld forgets a job MinJobAge seconds (default 300) after it ends, "
                "and accounting is disabled (no slurmdbd), so sacct cannot tell either. Check the job id; to keep "
                "ended jobs visible for longer raise MinJobAge in slurm.conf" % job_id)
        return found

    def cancel(self, job_id: int) -> list[str]:
        """``scancel ID``; returns the command."""
        cmd = [self.binary("scancel"), str(job_id)]
        rc, stdout, stderr = self.run(cmd)
        if rc != 0:
            raise self._failed(cmd, rc, stdout, stderr)
        return cmd

    def expand_hostlist(self, nodelist: str) -> list[str]:
        """``gpu-[1-2],login`` as ``["gpu-1", "gpu-2", "login"]`` through ``scontrol show hostnames``."""
        nodelist = (nodelist or "").strip()
        if not nodelist:
            return []
        if "[" not in nodelist:
            return [name for name in nodelist.split(",") if name]
        cmd = [self.binary("scontrol"), "show", "hostnames", nodelist]
        rc, stdout, stderr = self.run(cmd)
        if rc != 0:
            raise self._failed(cmd, rc, stdout, stderr)
        return [line.strip() for line in stdout.splitlines() if line.strip()]


def wait_for_job(
    commands: SlurmCommands,
    job_id: int,
    timeout: float,
    interval: float,
    clock: t.Callable[[], float] = time.monotonic,
    sleep: t.Callable[[float], None] = time.sleep,
    retries: int = 3,
    first_interval: float = 0.25,
    quick_for: float = 2.0,
) -> tuple[SlurmJob, bool]:
    """Poll until the job reaches a terminal state or ``timeout`` seconds pass.

    For the first ``quick_for`` seconds it looks every ``first_interval``
    seconds, so a short job is seen ending at once (one ``scontrol show job``
    each, a few milliseconds of slurmctld's time); then each wait doubles, up
    to ``interval``: a long job costs slurmctld one query per ``interval``.

    Returns ``(job, timed_out)``. Up to ``retries`` failed lookups in a row are
    tolerated (slurmctld may be busy); the next one raises.
    """
    delay = min(first_interval, interval)
    start = clock()
    deadline = start + timeout
    failures = 0
    last: SlurmJob | None = None
    while True:
        try:
            last = commands.job(job_id)
            failures = 0
        except SlurmCommandFailed:
            failures += 1
            if failures > retries:
                raise
        if last is not None and last.finished:
            return last, False
        remaining = deadline - clock()
        if remaining <= 0:
            if last is None:
                last = commands.job(job_id)
            return last, not last.finished
        sleep(min(delay, remaining))
        if clock() - start >= quick_for:
            delay = min(delay * 2, interval)


# -- what the slurm_job and slurm_job_info modules return -------------------------------


def job_result(commands: SlurmCommands, job: SlurmJob) -> dict[str, t.Any]:
    """The return values that describe a job, the same in slurm_job and slurm_job_info."""
    return dict(
        job_id=job.job_id,
        job_name=job.name,
        state=job.state,
        reason=job.reason,
        exit_code=job.exit_code,
        signal=job.signal,
        nodes=commands.expand_hostlist(job.nodelist),
        nodelist=job.nodelist,
        elapsed=job.elapsed,
        partition=job.partition,
        batch_host=job.batch_host,
        stdout_path=job.stdout_path,
        stderr_path=job.stderr_path,
        admin_comment=job.admin_comment,
        alloc_tres=job.alloc_tres,
        source=job.source,
    )


def _tail(warn: t.Callable[[str], None], job: SlurmJob, path: str | None, what: str, lines: int) -> str | None:
    if lines <= 0:
        return None
    if not path:
        if job.source == "sacct":
            warn("the accounting database does not record where job %d wrote its %s" % (job.job_id, what))
        return None
    try:
        return tail_file(path, lines)
    except OSError as err:
        where = " (the batch host is %s)" % job.batch_host if job.batch_host else ""
        warn("cannot read the %s of job %d at %s on this host%s: %s"
             % (what, job.job_id, path, where, err.strerror or err))
        return None


def job_tails(warn: t.Callable[[str], None], job: SlurmJob, lines: int) -> dict[str, str | None]:
    """``stdout_tail`` and ``stderr_tail``: the last ``lines`` lines of the job's files, where this host can read them.

    A file that cannot be read is a warning (``warn``) and a null tail; ``stderr_tail`` is null when standard error
    goes to the output file.
    """
    stdout = _tail(warn, job, job.stdout_path, "output", lines)
    same = job.stderr_path == job.stdout_path
    stderr = None if same else _tail(warn, job, job.stderr_path, "error output", lines)
    return dict(stdout_tail=stdout, stderr_tail=stderr)


def ended_message(job: SlurmJob) -> str:
    """How a job ended, with what to check for the usual failures."""
    msg = "job %d" % job.job_id
    if job.name:
        msg += " (%s)" % job.name
    msg += " ended %s" % job.state
    if job.exit_code is not None:
        msg += " with exit code %d" % job.exit_code
    if job.signal:
        msg += ", signal %d" % job.signal
    if job.reason:
        msg += " (reason: %s)" % job.reason
    if job.reason == "JobLaunchFailure":
        msg += ("; Slurm could not run the batch script or it was killed at once: check that the directories of the "
                "output and error files exist on the batch host %s" % (job.batch_host or job.nodelist or "?"))
    elif job.state == "TIMEOUT":
        msg += "; it reached its time limit (time)"
    elif job.state == "OUT_OF_MEMORY":
        msg += "; it ran out of memory"
    elif job.state == "NODE_FAIL":
        msg += "; one of its nodes (%s) failed" % job.nodelist
    return msg


def still_running_message(job: SlurmJob, waited: int) -> str:
    """What to do about a job that outlived the wait: it keeps running."""
    return (
        "job %d is still %s after waiting %d s (wait_timeout); it was not cancelled and keeps running. "
        "Look at it again with gpuops.platform.slurm_job_info job_id=%d (or `squeue -j %d`), cancel it with "
        "gpuops.platform.slurm_job state=cancelled job_id=%d (or `scancel %d`)"
        % (job.job_id, job.state, waited, job.job_id, job.job_id, job.job_id, job.job_id))
