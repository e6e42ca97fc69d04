"""Bearer-token authentication of API clients.

The tokens live in files that a rotation replaces (a new file renamed over the
old one). Every request checks the file's identity with one stat() and reads it
again only when it changed, so a rotated token takes effect at once, without a
restart, and the old one stops working.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .secretfile import SecretFile

MIN_TOKEN_LENGTH = 16

log = logging.getLogger("gpuops_api")

bearer = HTTPBearer(auto_error=False, description="The API token (file .gpuops/stack/api/token on the control host)")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenChecker:
    """Compares the presented bearer token with the configured one in constant time."""

    def __init__(self, token: str) -> None:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the API token must be at least {MIN_TOKEN_LENGTH} characters long")
        self._token = token.encode("utf-8")

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self._token)


class TokenUnavailable(Exception):
    """The token file cannot be used right now (missing, empty, too short): nobody gets in."""


class TokenFile:
    """A token kept in a file, re-read whenever the file is replaced or changed (inode, mtime, size)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._secret = SecretFile(path, what)
        self._raw: bytes | None = None
        self._checker: TokenChecker | None = None

    def checker(self) -> TokenChecker:
        """The checker of the file's current token; OSError or ValueError say what is wrong with the file."""
        raw = self._secret.read()
        if raw is not self._raw or self._checker is None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"the {self.what} file {self.path} is not text") from None
            self._checker = TokenChecker(text)
            self._raw = raw
        return self._checker

    def matches(self, presented: str) -> bool:
        """Whether `presented` is the file's current token. TokenUnavailable when the file is unusable."""
        try:
            checker = self.checker()
        except (OSError, ValueError) as err:
            detail = f"cannot read the {self.what} file {self.path}: {err.strerror}" if isinstance(err, OSError) \
                else f"{self.path}: {err}"
            # The reason (with the path) goes to the log only; clients are not told where secrets live.
            log.error("%s; every request is refused until the file is fixed (rotate the token)", detail)
            raise TokenUnavailable(self.what) from None
        return checker.matches(presented)


def _unavailable() -> HTTPException:
    return HTTPException(503, "the API cannot read its token file: its log says why; rotate the token "
                              "(ansible-playbook playbooks/rotate_token.yml)")


async def _presented(request: Request) -> str:
    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <API token>'", _CHALLENGE)
    return credentials.credentials


def _accepted(files: list[TokenFile | None], presented: str) -> bool:
    try:
        return any(file.matches(presented) for file in files if file is not None)
    except TokenUnavailable:
        raise _unavailable() from None


async def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the API's (current) bearer token."""
    presented = await _presented(request)
    if not _accepted([request.app.state.token_file], presented):
        raise HTTPException(401, "invalid API token (it may have been rotated: read the token file again)",
                            _CHALLENGE)


async def optional_token(request: Request) -> bool:
    """FastAPI dependency: False without an Authorization header, True with the valid token, 401 otherwise."""
    if "authorization" not in request.headers:
        return False
    await require_token(request)
    return True


async def require_metrics_token(request: Request) -> None:
    """FastAPI dependency for GET /metrics: the API token, or the metrics-only token when one is configured."""
    presented = await _presented(request)
    if not _accepted([request.app.state.token_file, request.app.state.metrics_token_file], presented):
        raise HTTPException(401, "invalid API token (it may have been rotated: read the token file again)",
                            _CHALLENGE)
