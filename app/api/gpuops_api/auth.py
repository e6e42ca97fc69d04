"""Bearer-token authentication of API clients (the token file is read once, at startup)."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

MIN_TOKEN_LENGTH = 16

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


async def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the API's bearer token."""
    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <API token>'", _CHALLENGE)
    checker: TokenChecker = request.app.state.token_checker
    if not checker.matches(credentials.credentials):
        raise HTTPException(401, "invalid API token", _CHALLENGE)


async def require_metrics_token(request: Request) -> None:
    """FastAPI dependency for GET /metrics: the API token, or the metrics-only token when one is configured."""
    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <API token>'", _CHALLENGE)
    checkers: list[TokenChecker] = [request.app.state.token_checker]
    if request.app.state.metrics_token_checker is not None:
        checkers.append(request.app.state.metrics_token_checker)
    if not any(checker.matches(credentials.credentials) for checker in checkers):
        raise HTTPException(401, "invalid API token", _CHALLENGE)
