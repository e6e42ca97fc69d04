"""The cloud's REST API v2 (RunPod, or the local cloud that serves the same paths).

Every request goes through the collection's RunPod client, ``_runpod_api.py``
(a link to collections/.../plugins/module_utils/_runpod_api.py in a checkout;
build-context.sh copies that file into the image): one client for the
inventory, the modules and the API. The client is synchronous, so each call
runs in a worker thread; its HTTP requests go through an httpx client (the
tests hand it their fake cloud's transport).
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

from ..errors import UpstreamError
from ..secretfile import SecretFile
from . import _runpod_api as runpod

#: Retries of one request (429 after Retry-After; 502/503/504 on GETs), bounded by the upstream timeout.
MAX_RETRIES = 2
BACKOFF_BASE = 0.25


#: What the API says where it needs the cloud's view of a pod and was given no key.
NO_KEY = ("the API was given no key for the cloud's API (cloud_api_key_file is not set): it does not read the pods' "
          "status or cost. On RunPod, create an API key with Read Only permission (console > Settings "
          "> API Keys) and deploy with -e app_runpod_read_key_file=<file holding it>")


class CloudClient:
    """Pods of the cloud, with the API key from cloud_api_key_file (read again when the file changes).

    Only reads (GET): the API never creates, changes or removes a pod, so a read-only key is all it needs.
    Without a key file, every call answers the upstream error NO_KEY.
    """

    def __init__(self, base_url: str, key_file: SecretFile | None, timeout: float,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_file = key_file
        self.timeout = timeout
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport,
                                  verify=ssl.create_default_context(), follow_redirects=False)

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
              validate_certs: bool) -> runpod.HttpAnswer:
        """The RunPod client's transport: one request through httpx."""
        try:
            response = self._http.request(method, url, headers=headers, content=body)
        except httpx.TimeoutException:
            raise runpod.TransportError(f"did not answer within {timeout:g}s") from None
        except httpx.HTTPError as err:
            raise runpod.TransportError(str(err) or err.__class__.__name__) from None
        return runpod.HttpAnswer(response.status_code, dict(response.headers), response.content)

    def _client(self) -> runpod.RunPodClient:
        if self.key_file is None:
            raise UpstreamError("cloud", NO_KEY)
        try:
            key = self.key_file.read().decode("utf-8")
        except (OSError, ValueError) as err:
            raise UpstreamError("cloud", self.key_file.problem() or str(err)) from None
        try:
            return runpod.RunPodClient(api_key=key, base_url=self.base_url, timeout=self.timeout,
                                       transport=self._send, max_retries=MAX_RETRIES, max_retry_wait=self.timeout,
                                       backoff_base=BACKOFF_BASE, user_agent="gpuops-api")
        except runpod.RunPodAPIError as err:
            raise UpstreamError("cloud", err.message) from None

    def _error(self, err: runpod.RunPodAPIError) -> UpstreamError:
        if isinstance(err, runpod.RunPodAuthError):
            return UpstreamError("cloud", f"the cloud API refused the key in cloud_api_key_file (HTTP {err.status})")
        if isinstance(err, runpod.RunPodUnreachable):
            return UpstreamError("cloud", f"cannot reach cloud at {self.base_url}: {err.reason}")
        return UpstreamError("cloud", err.message)

    def _pod(self, pod_id: str) -> runpod.Pod | None:
        try:
            return self._client().get_pod(pod_id)
        except runpod.RunPodNotFound:
            return None
        except runpod.RunPodAPIError as err:
            raise self._error(err) from None

    def _count(self) -> int:
        try:
            return len(self._client().list_pods())
        except runpod.RunPodAPIError as err:
            raise self._error(err) from None

    async def pod(self, pod_id: str) -> runpod.Pod | None:
        """The pod as the cloud describes it (GET /pods/{id}), or None when the cloud does not know it (404)."""
        return await asyncio.to_thread(self._pod, pod_id)

    async def ping(self) -> str:
        return f"cloud API answers ({await asyncio.to_thread(self._count)} pods visible)"

    def close(self) -> None:
        self._http.close()
