# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client for RunPod's REST API v2: the one RunPod client of gpuops.

Everything in gpuops that talks to RunPod uses this file: the inventory
plugin, the ``runpod_*`` modules and the gpuops API (``app/api``), whose image
gets a copy of this very file at build time (``app/api/build-context.sh``).
The same code talks to the real service (``https://api.runpod.io/v2``) and to
the local stand-in (``python -m localcloud``, ``http://127.0.0.1:8765/v2``);
only the base URL differs.

It needs nothing but the standard library. When Ansible is importable the
requests go through ``ansible.module_utils.urls.open_url``; otherwise through
``urllib``. A caller may pass its own ``transport`` instead (the API does).

- Errors are RFC 9457 problem documents; each becomes a typed exception whose
  message says what failed and what to do. The API key never appears in one.
- HTTP 429 is retried after ``Retry-After`` (or the ``RateLimit`` header),
  with bounded exponential backoff and jitter, a maximum number of retries and
  a maximum total wait. GETs are retried the same way on 502, 503 and 504.

Private to the collection: the interface may change without notice.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import random
import re
import socket
import ssl
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

from dataclasses import dataclass, field

try:
    from ansible.module_utils.urls import open_url as _ansible_open_url
    from ansible.module_utils.urls import ConnectionError as _AnsibleUrlsConnectionError
except ImportError:  # the gpuops API image: no Ansible there
    _ansible_open_url = None
    _AnsibleUrlsConnectionError = OSError

HAS_ANSIBLE_URLS = _ansible_open_url is not None

DEFAULT_BASE_URL = "https://api.runpod.io/v2"
DEFAULT_TIMEOUT = 30
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_RETRY_WAIT = 120.0
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 30.0
USER_AGENT = "gpuops.platform"

POD_STATUSES = ("PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED")
POD_ACTIONS = ("start", "stop", "restart", "terminate")
AVAILABILITY_LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")
CLOUDS = ("SECURE", "COMMUNITY")
PRODUCTS = ("POD", "CLUSTER", "SERVERLESS")
LOG_SOURCES = ("container", "system")
#: the most lines GET /pods/{id}/logs backfills (its ``tail``)
LOG_TAIL_MAX = 5000
#: seconds without a new event after which a log stream's backfill counts as read
DEFAULT_LOG_IDLE = 5.0
#: seconds one read of a log stream may take in all
DEFAULT_LOG_MAX_TIME = 60.0
#: bytes of one log stream read at most (5000 long lines)
LOG_STREAM_LIMIT = 8 * 1024 * 1024

#: statuses after which a GET is sent again (the request changed nothing)
RETRY_GET_STATUSES = (502, 503, 504)

_LOCAL_HINT = "for the local cloud run `python -m localcloud start` (or `make cloud-up`)"
_REMOTE_HINT = "for RunPod check the network connection and the base URL"
_KEY_HINT = "check RUNPOD_API_KEY or the api_key / api_key_file option"
_V1_HINT = (
    "RunPod retired REST v1 in November 2026 (it answers 410 Gone): use the v2 base URL %s "
    "(the local cloud: http://127.0.0.1:8765/v2)" % DEFAULT_BASE_URL
)
_BODY_EXCERPT = 300
# Capacity exhaustion has no machine-readable code in v2: RunPod answers 400
# with a human-readable detail. These words mark it.
_CAPACITY_RE = re.compile(
    r"capacity|no (?:longer )?(?:any )?(?:available |free )?(?:instances?|machines?|gpus?|hosts?)|out of stock|"
    r"not enough (?:gpus?|machines?|stock)|insufficient (?:capacity|stock|gpus?)|could not be placed|"
    r"unavailable in|no gpu",
    re.IGNORECASE,
)


# -- errors ------------------------------------------------------------------


class RunPodAPIError(Exception):
    """Any failure talking to the RunPod API.

    ``status`` is the HTTP status when the API answered, else None; ``title``,
    ``detail`` and ``errors`` come from the RFC 9457 problem document when the
    API sent one. ``message`` (also ``str(err)``) says what to do.
    """

    def __init__(
        self,
        message: str,
        url: str | None = None,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: t.Sequence[str] | None = None,
        method: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.method = method


class RunPodAuthError(RunPodAPIError):
    """The API rejected the key (HTTP 401) or the key may not do this (HTTP 403)."""


class RunPodNotFound(RunPodAPIError):
    """The object does not exist (HTTP 404)."""


class RunPodConflict(RunPodAPIError):
    """The action is not valid in the pod's current status (HTTP 409)."""


class RunPodValidationError(RunPodAPIError):
    """The API refused the request (HTTP 400 or 422); ``fields`` names the rejected fields when it said which."""

    def __init__(self, message: str, fields: t.Sequence[str] | None = None, **kwargs: t.Any) -> None:
        super().__init__(message, **kwargs)
        self.fields = list(fields or [])


class RunPodCapacityError(RunPodAPIError):
    """The GPU type (and data centre) could not be placed now (HTTP 400 whose detail speaks of capacity)."""


class RunPodBalanceError(RunPodAPIError):
    """The account's balance is too low (HTTP 402)."""


class RunPodRateLimited(RunPodAPIError):
    """HTTP 429 still after the retries allowed; ``retry_after`` is the wait the API last asked for."""

    def __init__(self, message: str, retry_after: float | None = None, **kwargs: t.Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RunPodServerError(RunPodAPIError):
    """HTTP 5xx (for a GET: still after the retries allowed)."""


class RunPodUnreachable(RunPodAPIError):
    """No HTTP answer: connection refused, DNS failure, TLS failure or timeout.

    ``reason`` is the low-level cause, without hints.
    """

    def __init__(self, message: str, reason: str = "", **kwargs: t.Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason


class TransportError(Exception):
    """Raised by a transport when no HTTP answer came (its message is the reason)."""


# -- small parsers -------------------------------------------------------------


def _as_float(value: t.Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_int(value: t.Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_str(value: t.Any) -> str | None:
    return value if isinstance(value, str) and value else None


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(text: t.Any) -> datetime.datetime | None:
    """An RFC 3339 date-time of the API as an aware datetime (UTC when it has no offset), else None."""
    if not isinstance(text, str):
        return None
    match = _RFC3339.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    tz = datetime.timezone.utc
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None


def epoch_seconds(text: t.Any) -> int | None:
    """An RFC 3339 date-time as whole seconds since the epoch (UTC), else None."""
    stamp = parse_timestamp(text)
    return int(stamp.timestamp() // 1) if stamp is not None else None


def parse_retry_after(value: t.Any, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if re.match(r"^\d+(\.\d+)?$", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def parse_rate_limit(value: t.Any) -> dict[str, dict[str, int]]:
    """The ``RateLimit`` header (``"minute";r=0;t=12, "hour";r=2800;t=1812``) as {window: {"r": .., "t": ..}}."""
    windows: dict[str, dict[str, int]] = {}
    if not isinstance(value, str):
        return windows
    for member in value.split(","):
        parts = [part.strip() for part in member.split(";")]
        name = parts[0].strip('"') if parts and parts[0] else ""
        if not name:
            continue
        params = {}
        for part in parts[1:]:
            key, _sep, number = part.partition("=")
            parsed = _as_int(number.strip())
            if key.strip() and parsed is not None:
                params[key.strip()] = parsed
        windows[name] = params
    return windows


def rate_limit_wait(value: t.Any) -> float | None:
    """Seconds until the exhausted window of a ``RateLimit`` header resets (the longest), else None."""
    waits = [params["t"] for params in parse_rate_limit(value).values() if params.get("r") == 0 and "t" in params]
    return float(max(waits)) if waits else None


_FIELD_PATTERNS = (
    # $: additional properties 'bogus', 'other' not allowed
    re.compile(r"propert(?:y|ies)\s+((?:'[^']+'(?:\s*,\s*)?)+)"),
    # $.gpu.count: must be >= 1   /   /gpu/count: ...
    re.compile(r"^\s*\$\.([A-Za-z0-9_.\[\]]+)\s*:"),
    re.compile(r"^\s*/([A-Za-z0-9_/]+)\s*:"),
    # field 'cloud' ...,  "cloud": ...
    re.compile(r"^\s*(?:field\s+)?['\"]([A-Za-z0-9_.]+)['\"]"),
)


def rejected_fields(errors: t.Iterable[str]) -> list[str]:
    """The field names that the ``errors`` of a 400/422 problem document name, in order, once each."""
    found: list[str] = []
    for error in errors or ():
        if not isinstance(error, str):
            continue
        for pattern in _FIELD_PATTERNS:
            match = pattern.search(error)
            if not match:
                continue
            names = re.findall(r"'([^']+)'", match.group(1)) or [match.group(1).replace("/", ".")]
            for name in names:
                if name not in found:
                    found.append(name)
            break
    return found


# -- pods ----------------------------------------------------------------------


@dataclass(frozen=True)
class SshEndpoint:
    """``ssh.direct`` of a pod: the pod's sshd through its published 22/tcp port."""

    host: str
    port: int
    username: str | None = None
    command: str | None = None

    @classmethod
    def from_api(cls, data: t.Any) -> SshEndpoint | None:
        if not isinstance(data, dict):
            return None
        host, port = _as_str(data.get("host")), _as_int(data.get("port"))
        if host is None or port is None:
            return None
        return cls(host=host, port=port, username=_as_str(data.get("username")), command=_as_str(data.get("command")))


@dataclass(frozen=True)
class GlobalNetworking:
    """``globalNetworking`` of a pod; ``ip`` and ``internal_dns`` only when enabled."""

    enabled: bool = False
    ip: str | None = None
    internal_dns: str | None = None

    @classmethod
    def from_api(cls, data: t.Any) -> GlobalNetworking:
        if not isinstance(data, dict):
            return cls()
        return cls(enabled=data.get("enabled") is True, ip=_as_str(data.get("ip")),
                   internal_dns=_as_str(data.get("internalDns")))

    def as_dict(self) -> dict:
        return {"enabled": self.enabled, "ip": self.ip, "internal_dns": self.internal_dns}


@dataclass(frozen=True)
class Pod:
    """The parts of RunPod's v2 ``Pod`` that gpuops uses; ``raw`` keeps the whole JSON object.

    SSH goes only through ``ssh.direct`` (``ssh_direct``): ``ssh.proxy`` carries
    no SFTP and no port forwarding, so Ansible cannot use it.
    """

    id: str
    name: str | None = None
    status: str | None = None
    actions: tuple = ()
    image: str | None = None
    gpu_type_id: str | None = None
    gpu_count: int | None = None
    cloud: str | None = None
    data_center_id: str | None = None
    cuda_version: str | None = None
    cost: float | None = None
    locked: bool | None = None
    ssh_direct: SshEndpoint | None = None
    global_networking: GlobalNetworking = field(default_factory=GlobalNetworking)
    runtime_ports: tuple = ()
    uptime: int | None = None
    created_at: str | None = None
    started_at: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: t.Any) -> Pod:
        """Build a Pod from one JSON object of the API."""
        if not isinstance(data, dict) or not data.get("id"):
            raise RunPodAPIError("unexpected pod object from the RunPod API (no id): %.200r" % (data,))
        gpu = data.get("gpu") if isinstance(data.get("gpu"), dict) else {}
        ssh = data.get("ssh") if isinstance(data.get("ssh"), dict) else {}
        runtime = data.get("runtime") if isinstance(data.get("runtime"), dict) else {}
        ports = runtime.get("ports") if isinstance(runtime.get("ports"), list) else []
        actions = data.get("actions") if isinstance(data.get("actions"), list) else []
        status = _as_str(data.get("status"))
        locked = data.get("locked")
        return cls(
            id=str(data["id"]),
            name=_as_str(data.get("name")),
            status=status.upper() if status else None,
            actions=tuple(str(action) for action in actions),
            image=_as_str(data.get("image")),
            gpu_type_id=_as_str(gpu.get("id")),
            gpu_count=_as_int(gpu.get("count")),
            cloud=_as_str(data.get("cloud")),
            data_center_id=_as_str(data.get("dataCenterId")),
            cuda_version=_as_str(data.get("cudaVersion")),
            cost=_as_float(data.get("cost")),
            locked=locked if isinstance(locked, bool) else None,
            ssh_direct=SshEndpoint.from_api(ssh.get("direct")),
            global_networking=GlobalNetworking.from_api(data.get("globalNetworking")),
            runtime_ports=tuple(dict(port) for port in ports if isinstance(port, dict)),
            uptime=_as_int(runtime.get("uptime")),
            created_at=_as_str(data.get("createdAt")),
            started_at=_as_str(data.get("startedAt")),
            raw=data,
        )

    @property
    def ssh_host(self) -> str | None:
        return self.ssh_direct.host if self.ssh_direct else None

    @property
    def ssh_port(self) -> int | None:
        return self.ssh_direct.port if self.ssh_direct else None

    @property
    def ssh_ready(self) -> bool:
        """True once the pod is RUNNING and the API reports ``ssh.direct``."""
        return self.status == "RUNNING" and self.ssh_direct is not None

    @property
    def started_at_epoch(self) -> int | None:
        return epoch_seconds(self.started_at)

    @property
    def host_key_alias(self) -> str | None:
        return host_key_alias(self)


def host_key_alias(pod: t.Any) -> str | None:
    """The SSH HostKeyAlias of a pod: ``runpod-<podId>-<startedAt as UTC epoch seconds>``.

    Same pod and same start give the same alias, so a changed host key is
    refused; a restart (new ``startedAt``, new host keys on RunPod's images)
    gives a new alias. ``pod`` is a Pod or the API's JSON object. None when
    the pod has not started (``startedAt`` is null).
    """
    if isinstance(pod, dict):
        pod_id, started = pod.get("id"), pod.get("startedAt")
    else:
        pod_id, started = getattr(pod, "id", None), getattr(pod, "started_at", None)
    epoch = epoch_seconds(started)
    if not pod_id or epoch is None:
        return None
    return "runpod-%s-%d" % (pod_id, epoch)


# -- deployments and orphans ------------------------------------------------------

#: The environment variable that tags each pod gpuops creates with its deployment's id (a random id kept in
#: the deployment's state directory). RunPod's v2 API has no labels or tags on pods, but ``env`` is part of a
#: CreatePodRequest and of every Pod it returns. terraform/runpod (main.tf) sets the same name.
DEPLOYMENT_ENV = "GPUOPS_DEPLOYMENT"

_DEPLOYMENT_ID_RE = re.compile(r"^[a-z0-9]{8,64}$")


def pod_deployment(pod: t.Any) -> str | None:
    """The gpuops deployment id a pod is tagged with (``env.GPUOPS_DEPLOYMENT``), else None.

    ``pod`` is a Pod or the API's JSON object. None for a pod gpuops did not make.
    """
    data = pod if isinstance(pod, dict) else getattr(pod, "raw", None)
    env = data.get("env") if isinstance(data, dict) else None
    value = env.get(DEPLOYMENT_ENV) if isinstance(env, dict) else None
    return value if isinstance(value, str) and _DEPLOYMENT_ID_RE.match(value) else None


def valid_deployment_id(value: t.Any) -> bool:
    """Whether ``value`` can be a deployment id: 8 to 64 lowercase letters and digits."""
    return isinstance(value, str) and _DEPLOYMENT_ID_RE.match(value) is not None


def named_like(pod: t.Any, name_prefix: str) -> bool:
    """Whether a pod's name is one terraform/runpod gives a pod of this prefix: ``<prefix>-<index>``."""
    name = pod.get("name") if isinstance(pod, dict) else getattr(pod, "name", None)
    return isinstance(name, str) and re.match(r"^%s-\d+$" % re.escape(name_prefix), name) is not None


def _by_name(pod: Pod) -> tuple:
    return (pod.name or "", pod.id)


@dataclass(frozen=True)
class Orphans:
    """What :func:`find_orphans` found: ``orphans`` (this deployment's, unknown to its state) and ``others``
    (named like this deployment's pods, but another deployment's or not made by gpuops: never touched)."""

    orphans: tuple = ()
    others: tuple = ()


def find_orphans(pods: t.Iterable[Pod], deployment_id: str, known_ids: t.Iterable[str],
                 name_prefix: str | None = None) -> Orphans:
    """This deployment's pods that its Terraform state does not know.

    A pod is an orphan when it carries ``deployment_id`` in ``env.GPUOPS_DEPLOYMENT``, its id is not in
    ``known_ids`` (the ids the state holds), it is not TERMINATED, and, when ``name_prefix`` is given, its
    name is ``<name_prefix>-<index>``. A pod of another deployment (another id) or without the tag (not made
    by gpuops) is never an orphan, whatever its name; the ones named like this deployment's pods are returned
    as ``others``, so that a caller can name them. Both sorted by name, then id.
    """
    if not valid_deployment_id(deployment_id):
        raise RunPodAPIError("invalid deployment id %r: it must be 8 to 64 lowercase letters and digits"
                             % (deployment_id,))
    known = set(known_ids or ())
    orphans, others = [], []
    for pod in pods or ():
        if pod.id in known or pod.status == "TERMINATED":
            continue
        named = name_prefix is None or named_like(pod, name_prefix)
        if pod_deployment(pod) == deployment_id and named:
            orphans.append(pod)
        elif name_prefix is not None and named:
            others.append(pod)
    return Orphans(orphans=tuple(sorted(orphans, key=_by_name)), others=tuple(sorted(others, key=_by_name)))


def in_stock(gpu_types: t.Iterable[t.Any]) -> list[str]:
    """Ids of the GPU types whose ``availability`` (from ``include=AVAILABILITY``) is LOW, MEDIUM or HIGH."""
    return [
        str(gpu["id"]) for gpu in gpu_types or ()
        if isinstance(gpu, dict) and gpu.get("id") and gpu.get("availability") in AVAILABILITY_LEVELS[1:]
    ]


# -- pod logs and the SSH host keys they print ----------------------------------------

@dataclass(frozen=True)
class LogEvent:
    """One event of ``GET /pods/{id}/logs``: ``data`` is ``{"ts", "source", "line"}``, ``id`` the SSE event id."""

    line: str
    ts: str | None = None
    source: str | None = None
    id: str | None = None


def parse_log_events(text: str) -> list[LogEvent]:
    """The events of a ``text/event-stream`` body of ``GET /pods/{id}/logs``, in order.

    Server-Sent Events as the HTML standard defines them: lines end in CRLF,
    LF or CR; ``field: value`` (one leading space of the value dropped);
    several ``data`` lines join with LF; a blank line ends an event; lines
    starting with ``:`` are comments. An event whose data is not the JSON
    object the API documents is kept with its raw data as ``line``. An
    unfinished event at the end (the stream was cut) is left out.
    """
    events: list[LogEvent] = []
    data: list[str] = []
    event_id: str | None = None
    for raw in re.split(r"\r\n|\r|\n", text):
        if raw == "":
            if data:
                events.append(_log_event("\n".join(data), event_id))
            data, event_id = [], None
            continue
        if raw.startswith(":"):
            continue
        name, sep, value = raw.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            event_id = value
    return events


def _log_event(data: str, event_id: str | None) -> LogEvent:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("line"), str):
        return LogEvent(line=data, id=event_id)
    return LogEvent(line=doc["line"], ts=_as_str(doc.get("ts")), source=_as_str(doc.get("source")), id=event_id)


#: The line RunPod's start script (runpod/containers container-template/start.sh) prints at every start of a
#: pod, before it makes the SSH host keys and prints their fingerprints.
POD_START_MARKER = "Pod Started"
#: One line of ``ssh-keygen -lf KEY.pub``: ``<bits> SHA256:<43 base64 characters> <comment> (<TYPE>)``.
_FINGERPRINT_LINE = re.compile(r"^\s*(\d+)\s+(SHA256:[A-Za-z0-9+/]{43})(?:\s+(.*?))?\s+\(([A-Z0-9-]+)\)\s*$")


@dataclass(frozen=True)
class HostKeyFingerprint:
    """One SSH host key fingerprint as ``ssh-keygen -l`` prints it."""

    fingerprint: str
    key_type: str
    bits: int | None = None
    comment: str = ""

    def as_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, "type": self.key_type, "bits": self.bits}


def parse_fingerprint_line(line: str) -> HostKeyFingerprint | None:
    """A line of ``ssh-keygen -l`` (``256 SHA256:... root@abc (ED25519)``) as a HostKeyFingerprint, else None."""
    match = _FINGERPRINT_LINE.match(line or "")
    if not match:
        return None
    bits, fingerprint, comment, key_type = match.groups()
    return HostKeyFingerprint(fingerprint=fingerprint, key_type=key_type, bits=int(bits), comment=comment or "")


@dataclass(frozen=True)
class StartHostKeys:
    """The SSH host key fingerprints that a pod's log shows for one start of the pod.

    ``marker_ts`` is the time of the start's ``Pod Started`` line (None when
    the log gives none); ``fingerprints`` are those printed after it, once
    each, in order (RunPod's script prints each twice).
    """

    marker_ts: str | None
    fingerprints: tuple = ()

    @property
    def values(self) -> tuple:
        return tuple(fp.fingerprint for fp in self.fingerprints)


#: How much earlier than the pod's ``startedAt`` its ``Pod Started`` line may be stamped and still count as
#: this start's (the two clocks are RunPod's; ``startedAt`` may be set once the container runs).
START_MARKER_SLACK = 30.0


def start_host_keys(events: t.Iterable[LogEvent], started_at: str | None = None,
                    slack: float = START_MARKER_SLACK) -> StartHostKeys | None:
    """The host key fingerprints a pod's log shows for its current start, else None.

    The log holds every start of the pod. The current start's part begins at
    the last ``Pod Started`` line of the container (``source`` container, or
    no source); with ``started_at`` (the pod's ``startedAt``) that line must
    not be stamped more than ``slack`` seconds before it, or it belongs to an
    earlier start (the current one has not reached the log yet): None. The
    fingerprints are the ``ssh-keygen -l`` lines after that marker. None also
    when the log has no marker at all (an image without RunPod's start
    script).
    """
    lines = [event for event in events if event.source in (None, "container")]
    marker = None
    for index, event in enumerate(lines):
        if event.line.strip() == POD_START_MARKER:
            marker = index
    if marker is None:
        return None
    marker_ts = lines[marker].ts
    if started_at is not None:
        started, stamped = parse_timestamp(started_at), parse_timestamp(marker_ts)
        if started is None:
            raise RunPodAPIError("the pod's startedAt %r is not an RFC 3339 date-time" % (started_at,))
        if stamped is None or (started - stamped).total_seconds() > slack:
            return None
    seen: dict[str, HostKeyFingerprint] = {}
    for event in lines[marker + 1:]:
        found = parse_fingerprint_line(event.line)
        if found is not None and found.fingerprint not in seen:
            seen[found.fingerprint] = found
    return StartHostKeys(marker_ts=marker_ts, fingerprints=tuple(seen.values()))


# -- transports ------------------------------------------------------------------


class HttpAnswer:
    """What a transport returns: the status, the headers (names in lower case) and the body."""

    def __init__(self, status: int, headers: t.Mapping[str, str] | None = None, body: bytes = b"") -> None:
        self.status = int(status)
        self.headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        self.body = body or b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Transport = t.Callable[[str, str, t.Dict[str, str], t.Optional[bytes], float, bool], HttpAnswer]


def _answer_from_http_error(err: urllib.error.HTTPError) -> HttpAnswer:
    try:
        body = err.read()
    except Exception:  # pylint: disable=broad-except
        body = b""
    headers = dict(err.headers.items()) if err.headers is not None else {}
    return HttpAnswer(err.code, headers, body)


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    return str(reason) or type(err).__name__


def ansible_transport(method: str, url: str, headers: dict, body: bytes | None, timeout: float,
                      validate_certs: bool) -> HttpAnswer:
    """One request through ``ansible.module_utils.urls.open_url``."""
    if _ansible_open_url is None:
        raise TransportError("ansible.module_utils.urls is not importable")
    try:
        resp = _ansible_open_url(
            url, data=body, headers=headers, method=method, timeout=timeout, validate_certs=validate_certs,
            http_agent=headers.get("User-Agent", USER_AGENT), follow_redirects="safe", use_netrc=False,
        )
        return HttpAnswer(resp.getcode(), dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as err:
        return _answer_from_http_error(err)
    except (urllib.error.URLError, _AnsibleUrlsConnectionError, http.client.HTTPException, OSError) as err:
        # URLError wraps refused connections and DNS failures; timeouts surface
        # as TimeoutError (an OSError), TLS failures as ssl.SSLError (an
        # OSError) or urls.SSLValidationError (a urls.ConnectionError).
        raise TransportError(_reason(err)) from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments
        if req.get_method() in ("GET", "HEAD"):
            return super().redirect_request(req, fp, code, msg, headers, newurl)
        return None


def urllib_transport(method: str, url: str, headers: dict, body: bytes | None, timeout: float,
                     validate_certs: bool) -> HttpAnswer:
    """One request through the standard library (where Ansible is not installed)."""
    context = ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with opener.open(request, timeout=timeout) as resp:
            return HttpAnswer(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as err:
        return _answer_from_http_error(err)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise TransportError(_reason(err)) from None


def default_transport() -> Transport:
    """``open_url`` when Ansible is importable, else ``urllib``."""
    return ansible_transport if HAS_ANSIBLE_URLS else urllib_transport


def _response_socket(resp: t.Any) -> t.Any:
    """The socket under an ``http.client.HTTPResponse`` (to bound each read), else None."""
    raw = getattr(getattr(resp, "fp", None), "raw", None)
    return getattr(raw, "_sock", None)


def read_stream(resp: t.Any, idle: float, max_time: float, limit: int = LOG_STREAM_LIMIT) -> bytes:
    """Read a streamed body until it ends, ``idle`` seconds pass without data, ``max_time`` passes or
    ``limit`` bytes came; then close it."""
    sock = _response_socket(resp)
    deadline = time.monotonic() + max(0.0, float(max_time))
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if sock is not None:
                sock.settimeout(max(0.01, min(float(idle), left)))
            try:
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            except (socket.timeout, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        resp.close()
    return b"".join(chunks)[:limit]


def default_stream_transport(idle: float = DEFAULT_LOG_IDLE, max_time: float = DEFAULT_LOG_MAX_TIME) -> Transport:
    """A transport for a stream that the server keeps open (Server-Sent Events): the body read until idle."""

    def stream(method: str, url: str, headers: dict, body: bytes | None, timeout: float,
               validate_certs: bool) -> HttpAnswer:
        try:
            if _ansible_open_url is not None:
                resp = _ansible_open_url(
                    url, data=body, headers=headers, method=method, timeout=timeout, validate_certs=validate_certs,
                    http_agent=headers.get("User-Agent", USER_AGENT), follow_redirects="safe", use_netrc=False,
                )
            else:
                context = ssl.create_default_context()
                if not validate_certs:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
                resp = opener.open(urllib.request.Request(url, data=body, headers=headers, method=method),
                                   timeout=timeout)
            status, answer_headers = resp.getcode(), dict(resp.headers.items())
            return HttpAnswer(status, answer_headers, read_stream(resp, idle, max_time))
        except urllib.error.HTTPError as err:
            return _answer_from_http_error(err)
        except (urllib.error.URLError, _AnsibleUrlsConnectionError, http.client.HTTPException, OSError,
                ValueError) as err:
            raise TransportError(_reason(err)) from None

    return stream


# -- the client ----------------------------------------------------------------------


class RunPodClient:
    """RunPod REST v2 client.

    The API key is sent as ``Authorization: Bearer KEY`` and never appears in
    an exception, a repr or a log line. ``max_retries`` and ``max_retry_wait``
    (seconds, all waits of one call together) bound the retries of 429 (any
    method) and of 502/503/504 (GET only); ``backoff_base`` and
    ``backoff_cap`` shape the exponential backoff used when the API gives no
    ``Retry-After``. ``rate_limit`` holds the last ``RateLimit`` header, parsed.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str | None = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        validate_certs: bool = True,
        user_agent: str = USER_AGENT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        transport: Transport | None = None,
        sleep: t.Callable[[float], t.Any] = time.sleep,
        stream_transport: Transport | None = None,
    ) -> None:
        if not api_key:
            raise RunPodAuthError("no RunPod API key given: set RUNPOD_API_KEY or the api_key / api_key_file option")
        base_url = (base_url or DEFAULT_BASE_URL).strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise RunPodAPIError("the RunPod base URL %r is not an http:// or https:// URL (RunPod: %s)"
                                 % (base_url, DEFAULT_BASE_URL))
        if re.search(r"/v1$", base_url):
            raise RunPodAPIError("the RunPod base URL %s is REST v1: %s" % (base_url, _V1_HINT))
        self._api_key = str(api_key)
        self.base_url = base_url
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.user_agent = user_agent
        self.max_retries = max(0, int(max_retries))
        self.max_retry_wait = max(0.0, float(max_retry_wait))
        self.backoff_base = max(0.0, float(backoff_base))
        self.backoff_cap = max(self.backoff_base, float(backoff_cap))
        self.transport = transport or default_transport()
        self.stream_transport = stream_transport
        self._sleep = sleep
        self.rate_limit: dict[str, dict[str, int]] = {}

    def __repr__(self) -> str:
        return "RunPodClient(base_url=%r, timeout=%r)" % (self.base_url, self.timeout)

    # -- helpers ---------------------------------------------------------

    def _redact(self, text: t.Any) -> str:
        text = str(text)
        return text.replace(self._api_key, "********") if self._api_key else text

    def url(self, path: str, query: t.Mapping[str, t.Any] | None = None) -> str:
        url = self.base_url + "/" + path.lstrip("/")
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        if params:
            url += "?" + urllib.parse.urlencode(params, safe=",")
        return url

    def is_local(self) -> bool:
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    def _unreachable(self, method: str, url: str, reason: str) -> RunPodUnreachable:
        hints = (_LOCAL_HINT, _REMOTE_HINT) if self.is_local() else (_REMOTE_HINT, _LOCAL_HINT)
        reason = self._redact(reason)
        msg = "cannot reach the RunPod API at %s (%s %s): %s; %s; %s" % (
            self.base_url, method, url, reason, hints[0], hints[1])
        return RunPodUnreachable(msg, reason=reason, url=url, method=method)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": between half and all of base * 2**attempt, capped."""
        delay = min(self.backoff_cap, self.backoff_base * (2 ** attempt))
        return delay / 2 + random.uniform(0, delay / 2)

    def _problem(self, answer: HttpAnswer) -> tuple[str | None, str | None, list[str], str]:
        """title, detail, errors and a one-line excerpt of an error answer."""
        text = answer.body.decode("utf-8", errors="replace")
        excerpt = self._redact(" ".join(text.split()))[:_BODY_EXCERPT]
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return None, None, [], excerpt
        title = _as_str(doc.get("title"))
        detail = _as_str(doc.get("detail")) or _as_str(doc.get("message")) or _as_str(doc.get("error"))
        errors = [self._redact(e) for e in doc.get("errors") or [] if isinstance(e, str)]
        return (self._redact(title) if title else None, self._redact(detail) if detail else None, errors, excerpt)

    def _http_error(self, method: str, url: str, answer: HttpAnswer, retries: int = 0) -> RunPodAPIError:
        status = answer.status
        title, detail, errors, excerpt = self._problem(answer)
        said = detail or excerpt
        what = "%s %s answered HTTP %d%s" % (method, url, status, (" " + title) if title else "")
        if said:
            what += ": " + said
        if errors:
            what += " (" + "; ".join(errors) + ")"
        common = dict(url=url, status=status, title=title, detail=detail, errors=errors, method=method)
        if status == 401:
            return RunPodAuthError("the RunPod API at %s rejected the API key (%s): %s" % (self.base_url, what, _KEY_HINT),
                                   **common)
        if status == 403:
            return RunPodAuthError(
                "the RunPod API at %s refused this request to the API key (%s): the key lacks the permission or the "
                "account cannot use this resource; %s" % (self.base_url, what, _KEY_HINT), **common)
        if status == 404:
            return RunPodNotFound("not found: %s" % what, **common)
        if status == 409:
            return RunPodConflict("conflict: %s; the action is not valid in the pod's current status (see the pod's "
                                  "actions)" % what, **common)
        if status == 410:
            return RunPodAPIError("%s: %s" % (what, _V1_HINT), **common)
        if status == 402:
            return RunPodBalanceError("%s: the account's balance is too low; add funds in the RunPod console" % what,
                                      **common)
        if status in (400, 422):
            fields = rejected_fields(errors)
            if status == 400 and not errors and _CAPACITY_RE.search(said or ""):
                return RunPodCapacityError(
                    "no capacity: %s; RunPod cannot place this GPU type (and data centre) now: choose another GPU type "
                    "or data centre in stock (gpuops.platform.runpod_catalog_info lists them) or try again later"
                    % what, **common)
            fix = ("fix the rejected field(s): %s" % ", ".join(fields)) if fields else "fix the request"
            return RunPodValidationError("the RunPod API refused the request: %s; %s" % (what, fix), fields=fields,
                                         **common)
        if status == 429:
            return RunPodRateLimited(
                "rate limited: %s, still after %d retr%s; wait a minute and run again, or make fewer requests "
                "(for the inventory: raise poll_interval, lower list_threshold)" % (
                    what, retries, "y" if retries == 1 else "ies"),
                retry_after=parse_retry_after(answer.header("Retry-After")), **common)
        if status >= 500:
            again = (" (still after %d retr%s)" % (retries, "y" if retries == 1 else "ies")) if retries else ""
            return RunPodServerError("RunPod API error: %s%s; RunPod (or the local cloud) failed: try again later"
                                     % (what, again), **common)
        return RunPodAPIError("RunPod API error: %s" % what, **common)

    def request(self, method: str, path: str, body: t.Any = None, expected: t.Iterable[int] = (200,),
                query: t.Mapping[str, t.Any] | None = None) -> t.Any:
        """Send one request (with the retries allowed); return the decoded JSON body (None when empty)."""
        method = method.upper()
        url = self.url(path, query)
        answer = self._exchange(method, url, body, expected, "application/json, application/problem+json",
                                self.transport)
        raw = answer.body
        if not raw or not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            excerpt = self._redact(raw[:_BODY_EXCERPT].decode("utf-8", errors="replace"))
            raise RunPodAPIError(
                "RunPod API answered %s %s with a body that is not JSON: %r" % (method, url, excerpt),
                url=url, status=answer.status, method=method) from None

    def _exchange(self, method: str, url: str, body: t.Any, expected: t.Iterable[int], accept: str,
                  transport: Transport) -> HttpAnswer:
        """One request through ``transport`` with the retries allowed; the answer when its status is expected."""
        headers = {
            "Authorization": "Bearer %s" % self._api_key,
            "Accept": accept,
            "User-Agent": self.user_agent,
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        expected = tuple(expected)
        waited = 0.0
        attempt = 0
        while True:
            try:
                answer = transport(method, url, dict(headers), data, self.timeout, self.validate_certs)
            except TransportError as err:
                raise self._unreachable(method, url, str(err)) from None
            if answer.header("RateLimit"):
                self.rate_limit = parse_rate_limit(answer.header("RateLimit"))
            retryable = answer.status == 429 or (method == "GET" and answer.status in RETRY_GET_STATUSES)
            if not retryable:
                break
            if answer.status == 429:
                asked = parse_retry_after(answer.header("Retry-After"))
                if asked is None:
                    asked = rate_limit_wait(answer.header("RateLimit"))
                delay = self._backoff(attempt) if asked is None else asked + random.uniform(0, min(1.0, asked / 10 + 0.1))
            else:
                delay = self._backoff(attempt)
            if attempt >= self.max_retries or waited + delay > self.max_retry_wait:
                error = self._http_error(method, url, answer, retries=attempt)
                if waited + delay > self.max_retry_wait and attempt < self.max_retries:
                    error.message = error.message + " (waiting %.0fs more would pass the %.0fs allowed)" % (
                        delay, self.max_retry_wait)
                    error.args = (error.message,)
                raise error
            self._sleep(delay)
            waited += delay
            attempt += 1
        if answer.status not in expected:
            if answer.status < 400:
                raise RunPodAPIError("RunPod API error: unexpected HTTP %s on %s %s (expected %s)" % (
                    answer.status, method, url, ", ".join(str(s) for s in expected)),
                    url=url, status=answer.status, method=method)
            raise self._http_error(method, url, answer, retries=attempt)
        return answer

    def _list(self, path: str, key: str, query: t.Mapping[str, t.Any] | None = None) -> list:
        data = self.request("GET", path, query=query)
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            url = self.url(path, query)
            raise RunPodAPIError("GET %s did not answer {%r: [...]}: is %s a RunPod REST v2 base URL?"
                                 % (url, key, self.base_url), url=url, method="GET")
        return items

    # -- pods ------------------------------------------------------------

    @staticmethod
    def _pod_path(pod_id: str) -> str:
        if not pod_id:
            raise RunPodAPIError("empty pod id")
        return "pods/" + urllib.parse.quote(str(pod_id), safe="")

    def get_pod(self, pod_id: str) -> Pod:
        """GET /pods/{id}. Raises RunPodNotFound when the pod is gone."""
        return Pod.from_api(self.request("GET", self._pod_path(pod_id)))

    def list_pods(self, include_cluster_pods: bool = False) -> list[Pod]:
        """GET /pods (``{"pods": [...]}``)."""
        query = {"includeClusterPods": "true"} if include_cluster_pods else None
        return [Pod.from_api(item) for item in self._list("pods", "pods", query)]

    def create_pod(self, spec: dict) -> Pod:
        """POST /pods with a CreatePodRequest (camelCase keys); 201 with the pod."""
        return Pod.from_api(self.request("POST", "pods", body=spec, expected=(200, 201)))

    def update_pod(self, pod_id: str, changes: dict) -> Pod:
        """PATCH /pods/{id} with an UpdatePodRequest."""
        return Pod.from_api(self.request("PATCH", self._pod_path(pod_id), body=changes))

    def pod_action(self, pod_id: str, action: str) -> Pod | None:
        """POST /pods/{id}/action: the pod after start/stop/restart, None after terminate (204).

        Raises RunPodConflict (409) when the action is not valid in the pod's status.
        """
        if action not in POD_ACTIONS:
            raise RunPodAPIError("unknown pod action %r: use one of %s" % (action, ", ".join(POD_ACTIONS)))
        data = self.request("POST", self._pod_path(pod_id) + "/action", body={"action": action}, expected=(200, 204))
        return Pod.from_api(data) if data is not None else None

    def delete_pod(self, pod_id: str) -> None:
        """DELETE /pods/{id} (204). Raises RunPodNotFound when already gone."""
        self.request("DELETE", self._pod_path(pod_id), expected=(200, 204))

    def pod_logs(self, pod_id: str, source: str | None = "container", tail: int = LOG_TAIL_MAX,
                 since: str | None = None, idle: float = DEFAULT_LOG_IDLE,
                 max_time: float = DEFAULT_LOG_MAX_TIME) -> list[LogEvent]:
        """GET /pods/{id}/logs: the pod's log events, oldest first.

        The API streams Server-Sent Events and keeps the stream open for new
        lines: the backfill (the last ``tail`` lines, at most 5000, or those
        since ``since``) is read until no event came for ``idle`` seconds, or
        ``max_time`` seconds passed, or the server ended the stream.
        ``source`` is ``container`` (the container's stdout and stderr),
        ``system`` (the host's lifecycle lines) or None (both).
        """
        if source not in (None,) + LOG_SOURCES:
            raise RunPodAPIError("unknown log source %r: use one of %s" % (source, ", ".join(LOG_SOURCES)))
        if not 0 <= int(tail) <= LOG_TAIL_MAX:
            raise RunPodAPIError("log tail %r out of range: 0 to %d lines" % (tail, LOG_TAIL_MAX))
        query = {"source": source, "tail": None if since else int(tail), "since": since}
        url = self.url(self._pod_path(pod_id) + "/logs", query)
        transport = self.stream_transport or default_stream_transport(idle, max_time)
        answer = self._exchange("GET", url, None, (200,), "text/event-stream, application/problem+json", transport)
        kind = (answer.header("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "text/event-stream":
            raise RunPodAPIError("GET %s answered %s, not text/event-stream: is %s a RunPod REST v2 base URL?"
                                 % (url, kind or "no Content-Type", self.base_url), url=url, method="GET",
                                 status=answer.status)
        return parse_log_events(answer.body.decode("utf-8", errors="replace"))

    # -- catalog ---------------------------------------------------------

    def list_gpu_types(
        self,
        include_availability: bool = False,
        product: str | t.Sequence[str] = "POD",
        count: int | None = None,
        cloud: str | None = None,
        country_codes: t.Sequence[str] | None = None,
        cuda_versions: t.Sequence[str] | None = None,
        min_cuda_version: str | None = None,
    ) -> list[dict]:
        """GET /catalog/gpus: GpuType objects (``{"gpus": [...]}``).

        With ``include_availability`` each carries ``availability`` (NONE, LOW,
        MEDIUM, HIGH), ``dataCenters`` and ``cudaVersions`` for ``product``
        (POD by default), ``count`` GPUs and ``cloud``. The API accepts these
        filters only with availability, so they are sent only then.
        """
        query: dict[str, t.Any] = {}
        if include_availability:
            products = [product] if isinstance(product, str) else list(product or ["POD"])
            query["include"] = "AVAILABILITY"
            query["product"] = ",".join(products)
            query["count"] = count
            query["cloud"] = cloud
            query["countryCodes"] = ",".join(country_codes) if country_codes else None
            query["cudaVersions"] = ",".join(cuda_versions) if cuda_versions else None
            query["minCudaVersion"] = min_cuda_version
        return [gpu for gpu in self._list("catalog/gpus", "gpus", query) if isinstance(gpu, dict)]

    def list_data_centers(
        self,
        global_network: bool | None = None,
        regions: t.Sequence[str] | None = None,
        include_gpu_availability: bool = False,
    ) -> list[dict]:
        """GET /catalog/datacenters: DataCenter objects (``{"dataCenters": [...]}``); ``globalNetwork`` marks
        the data centres that offer global networking."""
        query: dict[str, t.Any] = {
            "globalNetwork": None if global_network is None else ("true" if global_network else "false"),
            "regions": ",".join(regions) if regions else None,
            "include": "GPU_AVAILABILITY" if include_gpu_availability else None,
        }
        return [dc for dc in self._list("catalog/datacenters", "dataCenters", query) if isinstance(dc, dict)]
