"""The one place where the stand-in provider talks to RunPod's REST API v2.

Every failure is raised as :class:`ApiError`, which carries what a user needs
to act on it (the API's RFC 9457 problem: title, detail and errors; the method
and URL; and what to do) and never the API key.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional
from urllib.parse import quote

import requests

from localcloud.tfprovider import DEFAULT_BASE_URL

API_KEY_ENV = "RUNPOD_API_KEY"
API_KEY_FILE_ENV = "RUNPOD_API_KEY_FILE"
"""Stand-in only: a file holding the key, so that gpuops never has to put the
local cloud's key into a process environment (where ``ansible -vvv`` shows it)."""
BASE_URL_ENV = "RUNPOD_API_BASE_URL"
DEFAULT_TIMEOUT_S = 60.0
MAX_RETRIES = 3
"""429 answers retried (after Retry-After, at most MAX_RETRY_WAIT_S each) before giving up."""
MAX_RETRY_WAIT_S = 30.0

Pod = dict[str, Any]
"""A pod as RunPod's REST API v2 returns it (camelCase keys)."""


class ApiError(Exception):
    """A RunPod API call failed.

    :param summary: one line saying what failed
    :param detail: the API's message, the request, and what to do
    :param status: the HTTP status, or ``None`` when no response came back
    """

    def __init__(self, summary: str, detail: str, status: Optional[int] = None) -> None:
        super().__init__(f"{summary}: {detail}")
        self.summary = summary
        self.detail = detail
        self.status = status


def normalise_base_url(url: str) -> str:
    """The API host without a trailing ``/`` or ``/v2`` (both spellings are accepted)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v2"):
        url = url[: -len("/v2")]
    return url


@dataclass(frozen=True)
class Settings:
    """Where the API is and how to authenticate (the key is never shown in ``repr``)."""

    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"Settings(base_url={self.base_url!r}, api_key=<redacted>)"

    @classmethod
    def from_env(
        cls,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> "Settings":
        """Like the 2.x provider: the key from ``api_key``, else ``RUNPOD_API_KEY`` (else, stand-in
        only, the file named by ``RUNPOD_API_KEY_FILE``); the host from ``base_url``, else
        ``RUNPOD_API_BASE_URL``, else RunPod's."""
        env = os.environ if environ is None else environ
        url = normalise_base_url(base_url or env.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
        key = api_key or env.get(API_KEY_ENV) or ""
        if not key and env.get(API_KEY_FILE_ENV):
            try:
                with open(env[API_KEY_FILE_ENV], encoding="utf-8") as handle:
                    key = handle.read()
            except OSError as err:
                raise ApiError(
                    "cannot read the API key file",
                    f"{API_KEY_FILE_ENV}={env[API_KEY_FILE_ENV]}: {err.strerror}. "
                    "For the local cloud, start it (ansible-playbook playbooks/localcloud.yml) so that it "
                    "writes its key.",
                ) from None
        return cls(base_url=url, api_key=key.strip())


def _hint(status: Optional[int], settings: Settings) -> str:
    """What the user should do about a failure with this HTTP status."""
    if status is None:
        return (
            f"Check {BASE_URL_ENV} (now {settings.base_url}) and that the API is reachable; "
            "for the local cloud, start it with `ansible-playbook playbooks/localcloud.yml`."
        )
    if status in (401, 403):
        return (
            f"Check {API_KEY_ENV}: the API at {settings.base_url} did not accept the key. "
            "For the local cloud the key is in its state directory's api_key file "
            "(.gpuops/localcloud/api_key)."
        )
    if status in (400, 422):
        return "Fix the resource's arguments named in the API's message and apply again."
    if status == 404:
        return "The pod no longer exists; run terraform plan to re-create it."
    if status == 409:
        return "The pod's status does not allow this now (see its actions); wait and apply again."
    if status == 429:
        return "The API is rate limiting; wait a moment and apply again."
    if status >= 500:
        return "The API failed on its side; apply again later, and check the API's logs if it keeps failing."
    return "Check the API's message above."


def problem_message(response: requests.Response) -> str:
    """An RFC 9457 problem (``title``, ``detail``, ``errors``) as one readable text, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:2000] or response.reason or "(empty response)"
    if not isinstance(body, dict):
        return str(body)[:2000]
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors))
    if not parts:
        # Not a problem document: show what there is.
        parts = [str(body.get(k)) for k in ("error", "message") if body.get(k)] or [str(body)[:2000]]
    return ": ".join(parts)


class RunPodClient:
    """A small, thread-safe client for the pod endpoints of RunPod REST v2."""

    def __init__(
        self,
        settings: Settings,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._sleep = sleep

    def url(self, path: str) -> str:
        return f"{self.settings.base_url}/v2{path}"

    def _request(self, method: str, path: str, action: str, body: Optional[dict[str, Any]] = None) -> requests.Response:
        """Send one request (429s retried after Retry-After); raise :class:`ApiError` on a missing key or no answer."""
        url = self.url(path)
        if not self.settings.api_key:
            raise ApiError(
                f"Cannot {action}: no RunPod API key",
                f"{API_KEY_ENV} is not set (request: {method} {url}). "
                f"Export {API_KEY_ENV}; for the local cloud it is in .gpuops/localcloud/api_key.",
            )
        headers = {
            "Authorization": f"Bearer {self.settings.api_key}",
            "Accept": "application/json",
            "User-Agent": "gpuops-localcloud-tfprovider",
        }
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = requests.request(method, url, json=body, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                reason = type(exc).__name__
                if isinstance(exc, requests.ConnectionError):
                    reason = "connection refused or host unreachable"
                elif isinstance(exc, requests.Timeout):
                    reason = f"no answer within {self.timeout_s:g}s"
                raise ApiError(
                    f"Cannot {action}: RunPod API unreachable",
                    f"{method} {url}: {reason}. {_hint(None, self.settings)}",
                ) from None
            if response.status_code != 429 or attempt == MAX_RETRIES:
                return response
            self._sleep(_retry_after(response))
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, response: requests.Response, method: str, path: str, action: str) -> ApiError:
        status = response.status_code
        return ApiError(
            f"Cannot {action}: RunPod API answered {status} {response.reason or ''}".rstrip(),
            f"{problem_message(response)}\n\nRequest: {method} {self.url(path)}\n{_hint(status, self.settings)}",
            status=status,
        )

    @staticmethod
    def _pod_path(pod_id: str) -> str:
        return "/pods/" + quote(pod_id, safe="")

    def _json_pod(self, response: requests.Response, method: str, path: str, action: str) -> Pod:
        try:
            pod = response.json()
        except ValueError:
            pod = None
        if not isinstance(pod, dict) or not pod.get("id"):
            raise ApiError(
                f"Cannot {action}: unexpected answer from the RunPod API",
                f"{method} {self.url(path)} answered {response.status_code} without a pod object with an id.",
                status=response.status_code,
            )
        return pod

    def create_pod(self, body: dict[str, Any]) -> Pod:
        """``POST /v2/pods`` (201); returns the created pod."""
        action = f"create pod {body.get('name', '')!r}"
        response = self._request("POST", "/pods", action, body)
        if response.status_code not in (200, 201):
            raise self._fail(response, "POST", "/pods", action)
        return self._json_pod(response, "POST", "/pods", action)

    def get_pod(self, pod_id: str) -> Optional[Pod]:
        """``GET /v2/pods/{id}``; ``None`` when the pod is gone (404)."""
        path, action = self._pod_path(pod_id), f"read pod {pod_id}"
        response = self._request("GET", path, action)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, "GET", path, action)
        return self._json_pod(response, "GET", path, action)

    def update_pod(self, pod_id: str, body: dict[str, Any]) -> Pod:
        """``PATCH /v2/pods/{id}`` with the fields that change; returns the updated pod."""
        path, action = self._pod_path(pod_id), f"update pod {pod_id}"
        response = self._request("PATCH", path, action, body)
        if response.status_code != 200:
            raise self._fail(response, "PATCH", path, action)
        return self._json_pod(response, "PATCH", path, action)

    def pod_action(self, pod_id: str, verb: str) -> Optional[Pod]:
        """``POST /v2/pods/{id}/action`` (``start``/``stop``/...); the pod, or ``None`` on 204."""
        path, action = self._pod_path(pod_id) + "/action", f"{verb} pod {pod_id}"
        response = self._request("POST", path, action, {"action": verb})
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise self._fail(response, "POST", path, action)
        return self._json_pod(response, "POST", path, action)

    def delete_pod(self, pod_id: str) -> bool:
        """``DELETE /v2/pods/{id}`` (204); returns ``False`` when it was already gone (404)."""
        path, action = self._pod_path(pod_id), f"delete pod {pod_id}"
        response = self._request("DELETE", path, action)
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._fail(response, "DELETE", path, action)
        return True


def _retry_after(response: requests.Response) -> float:
    """Seconds to wait before retrying a 429 (Retry-After in seconds; 1 when absent or not a number)."""
    try:
        wait = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        wait = 1.0
    return max(0.0, min(wait, MAX_RETRY_WAIT_S))
