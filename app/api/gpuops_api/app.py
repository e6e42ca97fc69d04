"""The FastAPI application."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import __version__
from .auth import TokenChecker, TokenFile, require_metrics_token, require_token
from .config import LOOPBACK_HOSTS, ConfigError, Settings, read_secret
from .docs import STATIC_URL, install_docs
from .errors import install_error_handlers
from .models import ErrorBody
from .routes import alerts, gpus, health, info, jobs, metrics, nodes, pods
from .services import TailReader, Transports, build_services

#: Routes that answer without the bearer token.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", STATIC_URL})

#: Larger bodies are refused (413) before they are read; a script is at most 1 MiB.
MAX_BODY_BYTES = 8 * 1024 * 1024

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or wrong bearer token"},
    422: {"model": ErrorBody, "description": "Invalid input"},
    503: {"model": ErrorBody, "description": "An upstream (named in 'upstream') is down or misbehaving"},
}


def create_app(settings: Settings, *, transports: Transports | None = None, ssh: TailReader | None = None,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """The API for these settings. Raises ConfigError when a token file is unusable at start.

    The token files are read again whenever they change (a rotation), without a restart.
    """
    for path, what in ((settings.token_file, "API token"), (settings.metrics_token_file, "metrics token")):
        if path is not None:
            try:
                TokenChecker(read_secret(path, what))
            except ValueError as err:
                raise ConfigError(f"{path}: {err}") from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The upstream clients live as long as the server (and on its event loop).
        app.state.services = build_services(settings, transports, ssh, clock)
        try:
            yield
        finally:
            await app.state.services.aclose()

    app = FastAPI(
        title="gpuops API",
        version=__version__,
        description="Pods, GPUs and Slurm jobs of a gpuops deployment. Every route except /healthz and /readyz "
                    "needs 'Authorization: Bearer <API token>'.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs with local assets (no CDN)
        redoc_url=None,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.token_file = TokenFile(settings.token_file, "API token")
    app.state.metrics_token_file = (TokenFile(settings.metrics_token_file, "metrics token")
                                    if settings.metrics_token_file is not None else None)
    install_error_handlers(app)
    install_docs(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
    # Added last, so it runs first: a Host header other than these (DNS rebinding) answers 400.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_HOSTS, *settings.trusted_hosts])
    app.include_router(health.router)
    needs_token = [Depends(require_token)]
    v1 = APIRouter(prefix="/api/v1", dependencies=needs_token, responses=_ERRORS)
    for module in (info, pods, gpus, jobs, alerts):
        v1.include_router(module.router)
    app.include_router(v1)
    # The nodes' own routes: their node token, never the API token.
    app.include_router(nodes.router, prefix="/api/v1", responses=_ERRORS)
    app.include_router(metrics.router, dependencies=[Depends(require_metrics_token)], responses=_ERRORS)
    return app
