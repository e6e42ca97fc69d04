"""The one place where the API makes HTTP requests to an upstream, and maps their failures."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from ..errors import UpstreamError, UpstreamName


class HttpUpstream:
    """An HTTP client for one upstream: every transport failure becomes an UpstreamError naming it."""

    def __init__(self, name: UpstreamName, base_url: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=ssl.create_default_context(),
            follow_redirects=False,
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise UpstreamError(self.name, f"{self.name} at {self.base_url} did not answer within "
                                           f"{self.timeout:g}s") from None
        except httpx.HTTPError as err:
            reason = str(err) or err.__class__.__name__
            raise UpstreamError(self.name, f"cannot reach {self.name} at {self.base_url}: {reason}") from None

    def json(self, response: httpx.Response) -> Any:
        """The decoded JSON body, or an UpstreamError saying the upstream answered something else."""
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(
                self.name,
                f"{self.name} at {self.base_url} answered HTTP {response.status_code} with a body that is not JSON",
            ) from None

    def server_error(self, response: httpx.Response, what: str) -> UpstreamError:
        return UpstreamError(self.name, f"{self.name} at {self.base_url} failed {what}: HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()
