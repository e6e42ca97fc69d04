"""Alertmanager's API v2: the alerts firing now (not silenced, not inhibited)."""

from __future__ import annotations

from typing import Any

from ..errors import UpstreamError
from .http import HttpUpstream

#: Ask Alertmanager for what a person should see: active, neither silenced nor inhibited.
FIRING = {"active": "true", "silenced": "false", "inhibited": "false", "unprocessed": "false"}
#: Most severe first; unknown severities after these.
SEVERITIES = ("critical", "warning", "info")


class AlertmanagerClient:
    def __init__(self, http: HttpUpstream) -> None:
        self.http = http

    async def firing(self) -> list[dict[str, Any]]:
        """The firing alerts, most severe and oldest first, in the API's shape (see models.Alert)."""
        response = await self.http.request("GET", "/api/v2/alerts", params=FIRING)
        if response.status_code != 200:
            raise self.http.server_error(response, "to list its alerts")
        body = self.http.json(response)
        if not isinstance(body, list):
            raise UpstreamError("alertmanager", f"alertmanager at {self.http.base_url} answered /api/v2/alerts "
                                                "without a list of alerts")
        alerts = [_alert(raw) for raw in body if isinstance(raw, dict) and isinstance(raw.get("labels"), dict)]
        return sorted(alerts, key=lambda a: (_rank(a["severity"]), a["starts_at"], a["name"], a["fingerprint"]))

    async def ready(self) -> str:
        response = await self.http.request("GET", "/-/ready")
        if response.status_code != 200:
            raise UpstreamError("alertmanager", f"alertmanager at {self.http.base_url} is not ready "
                                                f"(HTTP {response.status_code})")
        return "Alertmanager is ready"


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _alert(raw: dict[str, Any]) -> dict[str, Any]:
    labels = {str(k): str(v) for k, v in raw["labels"].items()}
    annotations = raw.get("annotations") if isinstance(raw.get("annotations"), dict) else {}
    return {
        "name": labels.get("alertname", ""),
        "severity": labels.get("severity", ""),
        "summary": _text(annotations.get("summary")),
        "description": _text(annotations.get("description")),
        "labels": labels,
        "starts_at": _text(raw.get("startsAt")),
        "fingerprint": _text(raw.get("fingerprint")),
        "receivers": sorted(_text(r.get("name")) for r in raw.get("receivers") or [] if isinstance(r, dict)),
    }
