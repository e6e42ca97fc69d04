"""Whether Grafana answers: its links are offered only while it does (offline there is no Grafana)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

CACHE_SECONDS = 15.0


class GrafanaProbe:
    """GET <grafana>/api/health, remembered for CACHE_SECONDS; never raises."""

    def __init__(self, base_url: str | None, timeout: float, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, timeout=min(timeout, 2.0), transport=transport) \
            if base_url else None
        self._clock = clock
        self._checked_at: float | None = None
        self._up = False

    async def available(self) -> bool:
        if self._client is None:
            return False
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= CACHE_SECONDS:
            try:
                self._up = (await self._client.get("/api/health")).status_code == 200
            except httpx.HTTPError:
                self._up = False
            self._checked_at = now
        return self._up

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
