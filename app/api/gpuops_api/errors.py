"""Errors the API answers with, and the handlers that turn every failure into one JSON shape.

Every error body is {"detail": "<message a user can act on>"}; an upstream
that is down or misbehaves adds "upstream" and answers 503. Bad input always
answers 4xx.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("gpuops_api")

#: "inventory": the pods file the deployment renders (podsfile.py), missing pieces or broken.
UpstreamName = Literal["prometheus", "slurmrestd", "cloud", "ssh", "alertmanager", "inventory"]


class UpstreamError(Exception):
    """An upstream is unreachable, timed out, refused the API's credentials or answered nonsense."""

    def __init__(self, upstream: UpstreamName, detail: str) -> None:
        super().__init__(detail)
        self.upstream = upstream
        self.detail = detail


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    if not parts:
        return "request"
    where = {"query": "query parameter", "path": "path parameter", "body": "body", "header": "header"}
    head = where.get(parts[0])
    if head is None:
        return ".".join(parts)
    rest = ".".join(parts[1:])
    if head == "body":
        return f"body field '{rest}'" if rest else "body"
    return f"{head} '{rest}'"


def validation_message(exc: RequestValidationError) -> str:
    """One readable sentence per problem, without echoing the (possibly huge) input."""
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            problems.append("body: the body is not valid JSON")
            continue
        problems.append(f"{_location(error.get('loc', ()))}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UpstreamError)
    async def _upstream(_: Request, exc: UpstreamError) -> JSONResponse:
        log.warning("upstream %s: %s", exc.upstream, exc.detail)
        return JSONResponse({"detail": exc.detail, "upstream": exc.upstream}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug: log it with its traceback; never send internals to the client.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error: the API's log has the details"}, status_code=500)
