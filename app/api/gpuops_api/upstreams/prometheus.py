"""Prometheus' HTTP API: instant and range queries."""

from __future__ import annotations

from typing import Any

from ..errors import UpstreamError
from .http import HttpUpstream


class PrometheusClient:
    def __init__(self, http: HttpUpstream) -> None:
        self.http = http

    async def _query(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = await self.http.request("GET", path, params=params)
        if response.status_code >= 500:
            raise self.http.server_error(response, "a query")
        body = self.http.json(response)
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise UpstreamError("prometheus", f"Prometheus refused the query {params.get('query')!r}: "
                                              f"{error or f'HTTP {response.status_code}'}")
        result = (body.get("data") or {}).get("result")
        if not isinstance(result, list):
            raise UpstreamError("prometheus", "Prometheus answered a query without a result list")
        return [series for series in result if isinstance(series, dict)]

    async def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """An instant query: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        return await self._query("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})

    async def query_range(self, expr: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        """A range query: [{"metric": {...}, "values": [[ts, "v"], ...]}, ...]."""
        return await self._query("/api/v1/query_range", {
            "query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step),
        })

    async def ready(self) -> str:
        response = await self.http.request("GET", "/-/ready")
        if response.status_code != 200:
            raise UpstreamError("prometheus", f"Prometheus at {self.http.base_url} is not ready "
                                              f"(HTTP {response.status_code})")
        return "Prometheus is ready"
