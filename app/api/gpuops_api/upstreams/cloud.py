"""The cloud's REST API v1 (RunPod, or the local cloud that serves the same paths)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..errors import UpstreamError
from ..secretfile import SecretFile
from .http import HttpUpstream


class CloudClient:
    """GET /pods/{id} with the API key from cloud_api_key_file."""

    def __init__(self, http: HttpUpstream, key_file: SecretFile) -> None:
        self.http = http
        self.key_file = key_file

    def _headers(self) -> dict[str, str]:
        try:
            key = self.key_file.read().decode("utf-8")
        except (OSError, ValueError) as err:
            raise UpstreamError("cloud", self.key_file.problem() or str(err)) from None
        return {"Authorization": f"Bearer {key}"}

    async def _get(self, path: str) -> tuple[int, Any]:
        response = await self.http.request("GET", path, headers=self._headers())
        if response.status_code in (401, 403):
            raise UpstreamError("cloud", f"the cloud API refused the key in cloud_api_key_file "
                                         f"(HTTP {response.status_code})")
        if response.status_code == 404:
            return 404, None
        if response.status_code != 200:
            raise self.http.server_error(response, f"GET {path}")
        return 200, self.http.json(response)

    async def pod(self, pod_id: str) -> dict[str, Any] | None:
        """The pod as the cloud describes it, or None when the cloud does not know it (404)."""
        status, body = await self._get("/pods/" + quote(pod_id, safe=""))
        if status == 404:
            return None
        if not isinstance(body, dict):
            raise UpstreamError("cloud", f"the cloud API answered GET /pods/{pod_id} with unexpected JSON")
        return body

    async def ping(self) -> str:
        status, body = await self._get("/pods")
        if status != 200 or not isinstance(body, list):
            raise UpstreamError("cloud", "the cloud API answered GET /pods with something other than a list")
        return f"cloud API answers ({len(body)} pods visible)"
