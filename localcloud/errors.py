"""Errors the API answers, as RFC 9457 problems like RunPod's (``application/problem+json``)::

    {"title": "Not Found", "status": 404, "detail": "pod abc not found"}
    {"title": "Unprocessable Entity", "status": 422, "detail": "Request validation failed.",
     "errors": ["$: additional properties 'bogus' not allowed"]}

As on RunPod: 422 means the body or a parameter does not match the contract
(``errors`` names each violation), 400 means it matches but breaks a rule or
cannot be placed (e.g. no capacity), 409 an action not valid in the pod's
status, 429 too many requests (with ``Retry-After``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error with the HTTP status the API answers for it."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors

    @property
    def message(self) -> str:
        """The detail, with every validation error appended."""
        return self.detail + (": " + "; ".join(self.errors) if self.errors else "")


class BadRequest(ApiError):
    """400: the request matches the contract but breaks a rule, or cannot be placed."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


class Unprocessable(ApiError):
    """422: the request does not match the contract; ``errors`` lists each violation."""

    def __init__(self, errors: list[str], detail: str = "Request validation failed.") -> None:
        super().__init__(422, detail, errors)


class NotFound(ApiError):
    """404: no such pod, GPU type, data centre, template, volume or route."""

    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


class Conflict(ApiError):
    """409: the action is not valid in the pod's current status."""

    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


class Unauthorized(ApiError):
    """401: missing or wrong API key."""

    def __init__(self, detail: str = "invalid bearer token") -> None:
        super().__init__(401, detail)


def problem(status: int, detail: str, errors: list[str] | None = None) -> dict[str, Any]:
    """Return the JSON body of an error answer (title from the status code)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return body
