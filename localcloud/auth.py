"""The API key: created once per state directory, checked on every API call."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from localcloud.errors import Unauthorized

log = logging.getLogger(__name__)


def ensure_api_key(path: Path) -> str:
    """Return the key stored in ``path``, creating it (0600) on first use.

    The key is never logged; only the file's path is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise RuntimeError(f"API key file {path} is empty; delete it to generate a new key") from None
        return key
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    log.info("api key created", extra={"fields": {"api_key_file": str(path)}})
    return key


def check_bearer(authorization: str | None, api_key: str) -> None:
    """Raise Unauthorized unless ``authorization`` is ``Bearer <api_key>``."""
    if not authorization:
        raise Unauthorized("missing bearer token: send the header 'Authorization: Bearer <API key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise Unauthorized("invalid bearer token: the API key is wrong")
