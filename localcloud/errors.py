"""Errors the API answers, and their RunPod-style JSON body.

Every error, whatever its source (validation, auth, unknown route, a pod
that does not exist, a backend failure) answers the same shape::

    {"error": "pod abc not found", "message": "pod abc not found", "status": 404}
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from localcloud.models import ErrorBody


class ApiError(Exception):
    """An error with the HTTP status the API answers for it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(ApiError):
    """400: the request is invalid; the message names the field."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class NotFound(ApiError):
    """404: no such pod (or route)."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class Unauthorized(ApiError):
    """401: missing or wrong API key."""

    def __init__(self, message: str = "Unauthorized: missing or invalid API key") -> None:
        super().__init__(401, message)


def error_body(status: int, message: str) -> dict[str, Any]:
    """Return the JSON body of an error answer."""
    return ErrorBody(error=message, message=message, status=status).model_dump()


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path


def describe_validation_errors(errors: list[ErrorDetails] | list[dict[str, Any]]) -> str:
    """Turn pydantic/FastAPI validation errors into one message naming each bad field."""
    messages: list[str] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            messages.append(f"invalid JSON body: {err.get('msg', '')}".rstrip(": "))
            continue
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        path = _field_path(tuple(err.get("loc", ())))
        messages.append(f"{path or 'request body'}: {msg}")
    return "; ".join(messages) or "invalid request"


def bad_request_from(exc: ValidationError) -> BadRequest:
    """Convert a pydantic ValidationError about a request into a 400."""
    return BadRequest(describe_validation_errors(exc.errors()))
