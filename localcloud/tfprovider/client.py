"""The one place where the stand-in provider talks to RunPod's REST API v1.

Every failure is raised as :class:`ApiError`, which carries what a user needs
to act on it (the API's own message, the method and URL, and what to do) and
never the API key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import quote

import requests

from localcloud.tfprovider import DEFAULT_BASE_URL

API_KEY_ENV = "RUNPOD_API_KEY"
API_KEY_FILE_ENV = "RUNPOD_API_KEY_FILE"
"""Stand-in only: a file holding the key, so that gpuops never has to put the
local cloud's key into a process environment (where ``ansible -vvv`` shows it)."""
BASE_URL_ENV = "RUNPOD_BASE_URL"
DEFAULT_TIMEOUT_S = 60.0

Pod = dict[str, Any]
"""A pod as RunPod's REST API returns it (camelCase keys)."""


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


@dataclass(frozen=True)
class Settings:
    """Where the API is and how to authenticate (the key is never shown in ``repr``)."""

    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"Settings(base_url={self.base_url!r}, api_key=<redacted>)"

    @classmethod
    def from_env(cls, api_key: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        """Build settings from an explicit key, else ``RUNPOD_API_KEY``, else the file named by
        ``RUNPOD_API_KEY_FILE``, and ``RUNPOD_BASE_URL``."""
        env = os.environ if environ is None else environ
        base_url = (env.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        key = api_key or env.get(API_KEY_ENV) or ""
        if not key and env.get(API_KEY_FILE_ENV):
            try:
                with open(env[API_KEY_FILE_ENV], encoding="utf-8") as handle:
                    key = handle.read()
            except OSError as err:
                raise ApiError(
                    "cannot read the API key file",
                    f"{API_KEY_FILE_ENV}={env[API_KEY_FILE_ENV]}: {err.strerror}. "
                    "For the local cloud, start it (python -m localcloud start) so that it writes its key.",
                ) from None
        return cls(base_url=base_url, api_key=key.strip())


def _hint(status: Optional[int], settings: Settings) -> str:
    """What the user should do about a failure with this HTTP status."""
    if status is None:
        return (
            f"Check {BASE_URL_ENV} (now {settings.base_url}) and that the API is reachable; "
            "for the local cloud, start it with `python -m localcloud start` and check "
            "`python -m localcloud status`."
        )
    if status in (401, 403):
        return (
            f"Check {API_KEY_ENV}: the API at {settings.base_url} did not accept the key. "
            "For the local cloud the key is in its state directory's api_key file "
            "(.gpuops/localcloud/api_key)."
        )
    if status == 400:
        return "Fix the resource's arguments named in the API's message (for example gpu_type_id) and apply again."
    if status == 404:
        return "The pod no longer exists; run terraform plan to re-create it."
    if status == 429:
        return "The API is rate limiting; wait a moment and apply again."
    if status >= 500:
        return "The API failed on its side; apply again later, and check the API's logs if it keeps failing."
    return "Check the API's message above."


def _api_message(response: requests.Response) -> str:
    """The error message in a RunPod error body (``{"error": ...}`` or similar), else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:2000] or response.reason or "(empty response)"
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "errors"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else str(value)
    return str(body)[:2000]


class RunPodClient:
    """A small, thread-safe client for the pod endpoints of RunPod REST v1."""

    def __init__(self, settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.settings = settings
        self.timeout_s = timeout_s

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url}{path}"

    def _request(self, method: str, path: str, action: str, body: Optional[dict[str, Any]] = None) -> requests.Response:
        """Send one request; raise :class:`ApiError` on a missing key or no response."""
        url = self._url(path)
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
        try:
            return requests.request(method, url, json=body, headers=headers, timeout=self.timeout_s)
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

    def _fail(self, response: requests.Response, method: str, path: str, action: str) -> ApiError:
        status = response.status_code
        return ApiError(
            f"Cannot {action}: RunPod API answered {status} {response.reason or ''}".rstrip(),
            f"{_api_message(response)}\n\nRequest: {method} {self._url(path)}\n{_hint(status, self.settings)}",
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
                f"{method} {self._url(path)} answered {response.status_code} without a pod object with an id.",
                status=response.status_code,
            )
        return pod

    def create_pod(self, body: dict[str, Any]) -> Pod:
        """``POST /pods``; returns the created pod."""
        action = f"create pod {body.get('name', '')!r}"
        response = self._request("POST", "/pods", action, body)
        if response.status_code not in (200, 201):
            raise self._fail(response, "POST", "/pods", action)
        return self._json_pod(response, "POST", "/pods", action)

    def get_pod(self, pod_id: str) -> Optional[Pod]:
        """``GET /pods/{id}``; ``None`` when the pod is gone (404)."""
        path, action = self._pod_path(pod_id), f"read pod {pod_id}"
        response = self._request("GET", path, action)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, "GET", path, action)
        return self._json_pod(response, "GET", path, action)

    def update_pod(self, pod_id: str, body: dict[str, Any]) -> Pod:
        """``PATCH /pods/{id}`` (RunPod resets the pod); returns the updated pod."""
        path, action = self._pod_path(pod_id), f"update pod {pod_id}"
        response = self._request("PATCH", path, action, body)
        if response.status_code != 200:
            raise self._fail(response, "PATCH", path, action)
        return self._json_pod(response, "PATCH", path, action)

    def delete_pod(self, pod_id: str) -> bool:
        """``DELETE /pods/{id}`` (204); returns ``False`` when it was already gone (404)."""
        path, action = self._pod_path(pod_id), f"delete pod {pod_id}"
        response = self._request("DELETE", path, action)
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._fail(response, "DELETE", path, action)
        return True
