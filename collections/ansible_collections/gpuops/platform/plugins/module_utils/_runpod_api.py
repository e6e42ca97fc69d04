# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client for RunPod's REST API v1.

This is the one place in gpuops.platform that talks to RunPod. The same code
talks to the real service (https://rest.runpod.io/v1) and to the local
stand-in (``python -m localcloud``); only the base URL differs.

Private to the collection: the interface may change without notice.
"""

from __future__ import annotations

import http.client
import json
import typing as t
import urllib.error
import urllib.parse

from dataclasses import dataclass, field

from ansible.module_utils.urls import open_url, ConnectionError as UrlsConnectionError


DEFAULT_BASE_URL = "https://rest.runpod.io/v1"
DEFAULT_TIMEOUT = 30
USER_AGENT = "gpuops.platform"

_LOCAL_HINT = "for the local cloud run `python -m localcloud start` (or `make cloud-up`)"
_REMOTE_HINT = "for RunPod check the network connection and the base URL"
_BODY_EXCERPT = 300


class RunPodAPIError(Exception):
    """Any failure talking to the RunPod API.

    ``status`` is the HTTP status when the API answered, else None.
    """

    def __init__(self, message: str, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status


class RunPodAuthError(RunPodAPIError):
    """The API rejected the key (HTTP 401 or 403)."""


class RunPodNotFound(RunPodAPIError):
    """The object does not exist (HTTP 404)."""


class RunPodUnreachable(RunPodAPIError):
    """No HTTP answer: connection refused, DNS failure, TLS failure or timeout."""


def _as_float(value: t.Any) -> float | None:
    """RunPod documents costPerHr as a number but its example is a string."""
    if value is None or value == "":
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


@dataclass(frozen=True)
class Pod:
    """The parts of RunPod's ``Pod`` schema that gpuops uses.

    ``raw`` keeps the whole JSON object as the API returned it.
    """

    id: str
    name: str | None = None
    desired_status: str | None = None
    public_ip: str | None = None
    ssh_port: int | None = None
    port_mappings: dict = field(default_factory=dict)
    gpu_type_id: str | None = None
    gpu_count: int | None = None
    cost_per_hr: float | None = None
    interruptible: bool | None = None
    image: str | None = None
    machine_id: str | None = None
    last_status_change: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: t.Any) -> Pod:
        """Build a Pod from one JSON object of the REST API."""
        if not isinstance(data, dict) or not data.get("id"):
            raise RunPodAPIError("unexpected pod object from the RunPod API (no id): %.200r" % (data,))
        mappings = data.get("portMappings") or {}
        if not isinstance(mappings, dict):
            mappings = {}
        gpu = data.get("gpu") if isinstance(data.get("gpu"), dict) else {}
        machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
        interruptible = data.get("interruptible")
        return cls(
            id=str(data["id"]),
            name=data.get("name"),
            desired_status=data.get("desiredStatus"),
            # publicIp is null (or empty) while the pod initialises
            public_ip=data.get("publicIp") or None,
            ssh_port=_as_int(mappings.get("22")),
            port_mappings=dict(mappings),
            gpu_type_id=gpu.get("id") or machine.get("gpuTypeId"),
            gpu_count=_as_int(gpu.get("count")),
            cost_per_hr=_as_float(data.get("costPerHr")),
            interruptible=interruptible if isinstance(interruptible, bool) else None,
            image=data.get("image"),
            machine_id=data.get("machineId"),
            last_status_change=data.get("lastStatusChange"),
            raw=data,
        )

    @property
    def ssh_ready(self) -> bool:
        """True once the API reports both the public IP and the port that maps to 22."""
        return bool(self.public_ip) and self.ssh_port is not None


class RunPodClient:
    """Minimal RunPod REST v1 client built on ``ansible.module_utils.urls.open_url``.

    The API key is sent as ``Authorization: Bearer KEY`` and never appears in
    an exception, a repr or a log line.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        validate_certs: bool = True,
        user_agent: str = USER_AGENT,
    ) -> None:
        if not api_key:
            raise RunPodAuthError("no RunPod API key given: set RUNPOD_API_KEY or the api_key option")
        self._api_key = api_key
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.user_agent = user_agent

    def __repr__(self) -> str:
        return "RunPodClient(base_url=%r, timeout=%r)" % (self.base_url, self.timeout)

    # -- helpers ---------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "********") if self._api_key else text

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def _is_local(self) -> bool:
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    def _unreachable(self, method: str, url: str, reason: t.Any) -> RunPodUnreachable:
        hints = (_LOCAL_HINT, _REMOTE_HINT) if self._is_local() else (_REMOTE_HINT, _LOCAL_HINT)
        msg = "cannot reach the RunPod API at %s (%s %s): %s; %s; %s" % (
            self.base_url, method, url, self._redact(str(reason)), hints[0], hints[1])
        return RunPodUnreachable(msg, url=url)

    def _http_error(self, method: str, url: str, err: urllib.error.HTTPError) -> RunPodAPIError:
        status = err.code
        try:
            body = err.read().decode("utf-8", errors="replace")
        except Exception:
            body = ""
        detail = self._redact(" ".join(body.split()))[:_BODY_EXCERPT]
        suffix = (": " + detail) if detail else ""
        if status in (401, 403):
            return RunPodAuthError(
                "the RunPod API at %s rejected the API key (HTTP %d on %s %s): check RUNPOD_API_KEY "
                "or the api_key / api_key_file option%s" % (self.base_url, status, method, url, suffix),
                url=url, status=status)
        if status == 404:
            return RunPodNotFound("not found (HTTP 404 on %s %s)%s" % (method, url, suffix), url=url, status=status)
        return RunPodAPIError("RunPod API error: HTTP %d on %s %s%s" % (status, method, url, suffix), url=url, status=status)

    def request(self, method: str, path: str, body: t.Any = None, expected: t.Iterable[int] = (200,)) -> t.Any:
        """Send one request; return the decoded JSON body (None when empty)."""
        url = self.url(path)
        headers = {
            "Authorization": "Bearer %s" % self._api_key,
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            resp = open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                http_agent=self.user_agent,
                follow_redirects="safe",
                use_netrc=False,
            )
            status = resp.getcode()
            raw = resp.read()
        except urllib.error.HTTPError as err:
            raise self._http_error(method, url, err) from None
        except (urllib.error.URLError, UrlsConnectionError, http.client.HTTPException, OSError) as err:
            # URLError wraps refused connections and DNS failures; timeouts
            # surface as TimeoutError (an OSError), TLS failures as ssl.SSLError
            # (an OSError) or urls.SSLValidationError (a urls.ConnectionError).
            reason = getattr(err, "reason", None) or err
            raise self._unreachable(method, url, reason) from None
        if status not in tuple(expected):
            raise RunPodAPIError("RunPod API error: unexpected HTTP %s on %s %s" % (status, method, url), url=url, status=status)
        if not raw or not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            excerpt = self._redact(raw[:_BODY_EXCERPT].decode("utf-8", errors="replace"))
            raise RunPodAPIError(
                "RunPod API answered %s %s with a body that is not JSON: %r" % (method, url, excerpt),
                url=url, status=status) from None

    # -- pods ------------------------------------------------------------

    @staticmethod
    def _pod_path(pod_id: str) -> str:
        if not pod_id:
            raise RunPodAPIError("empty pod id")
        return "pods/" + urllib.parse.quote(str(pod_id), safe="")

    def get_pod(self, pod_id: str) -> Pod:
        """GET /pods/{id}. Raises RunPodNotFound when the pod is gone."""
        return Pod.from_api(self.request("GET", self._pod_path(pod_id)))

    def list_pods(self) -> list[Pod]:
        """GET /pods."""
        data = self.request("GET", "pods")
        if data is None:
            return []
        if not isinstance(data, list):
            raise RunPodAPIError("GET %s did not answer a list of pods" % self.url("pods"), url=self.url("pods"))
        return [Pod.from_api(item) for item in data]

    def create_pod(self, spec: dict) -> Pod:
        """POST /pods with a PodCreateInput object (camelCase keys)."""
        return Pod.from_api(self.request("POST", "pods", body=spec, expected=(200, 201)))

    def delete_pod(self, pod_id: str) -> None:
        """DELETE /pods/{id} (204). Raises RunPodNotFound when already gone."""
        self.request("DELETE", self._pod_path(pod_id), expected=(200, 204))
