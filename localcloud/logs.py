"""Structured logging: one JSON object per line, and helpers that keep secrets out.

Log calls pass their fields as ``extra={"fields": {...}}``. Nothing logs the
API key; a ``PUBLIC_KEY`` shows up only as its SHA256 fingerprint, and other
env values not at all (only their names).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: ts, level, logger, msg, then its fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "info") -> None:
    """Send every logger (uvicorn's too) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def public_key_fingerprint(public_key: str) -> str:
    """Return an OpenSSH-style ``SHA256:...`` fingerprint of a public key line."""
    parts = public_key.split()
    blob = parts[1] if len(parts) >= 2 else public_key
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raw = public_key.encode()
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def env_summary(env: dict[str, str]) -> dict[str, Any]:
    """Describe a pod's env for the log: the names only, plus PUBLIC_KEY's fingerprint."""
    summary: dict[str, Any] = {"env_names": sorted(env)}
    if env.get("PUBLIC_KEY"):
        summary["public_key_fingerprints"] = [
            public_key_fingerprint(line) for line in env["PUBLIC_KEY"].splitlines() if line.strip()
        ]
    return summary
