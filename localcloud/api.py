"""The HTTP API: RunPod's REST v1 under ``/v1``, fault injection under ``/_localcloud``.

``create_app`` builds a FastAPI app around a backend, a state directory and
a clock. Every ``/v1`` and ``/_localcloud`` route needs
``Authorization: Bearer <key from <state-dir>/api_key>``; ``/healthz`` does
not. Every error answers ``{"error", "message", "status"}``; invalid input
answers 400 (not FastAPI's 422) naming the field.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from localcloud import catalog
from localcloud.auth import check_bearer, ensure_api_key
from localcloud.backends import BackendError, BackendUnavailable, PodBackend, make_backend
from localcloud.clock import Clock, utc_now
from localcloud.config import Settings
from localcloud.errors import ApiError, BadRequest, bad_request_from, describe_validation_errors, error_body
from localcloud.models import PodCreateInput, PodUpdateInput
from localcloud.records import PodRecord
from localcloud.service import PodFilters, PodService
from localcloud.store import StateStore

log = logging.getLogger(__name__)

_AUTH_PREFIXES = ("/v1", "/_localcloud")
M = TypeVar("M", bound=BaseModel)


def create_app(settings: Settings, *, backend: PodBackend | None = None, clock: Clock = utc_now) -> FastAPI:
    """Build the app for ``settings``: load (or create) the API key, recover the pods.

    ``backend`` defaults to the one ``settings.backend`` names; ``clock`` lets
    tests move time (the ready delay) without sleeping.
    """
    api_key = ensure_api_key(settings.api_key_file)
    backend = backend or make_backend(settings)
    service = PodService(
        backend, StateStore(settings.state_file, backend.name), clock=clock, ready_delay=settings.ssh_ready_delay
    )
    service.recover()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        backend.close()

    app = FastAPI(title="localcloud", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.service = service
    app.state.settings = settings
    _install_error_handlers(app)

    app.add_middleware(BearerAuth, api_key=api_key)
    app.include_router(_health)
    app.include_router(_pods)
    app.include_router(_faults)
    return app


class BearerAuth:
    """ASGI middleware: every path under /v1 and /_localcloud needs ``Bearer <api key>``.

    It runs before routing, so unknown paths under those prefixes answer 401
    to strangers, not 404.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 unless the request is exempt or carries the key."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if any(path == p or path.startswith(p + "/") for p in _AUTH_PREFIXES):
            try:
                check_bearer(Headers(scope=scope).get("authorization"), self.api_key)
            except ApiError as exc:
                await _error_response(exc.status, exc.message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def get_service(request: Request) -> PodService:
    """FastAPI dependency: the app's PodService."""
    return request.app.state.service


Service = Annotated[PodService, Depends(get_service)]


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """FastAPI dependency factory: parse the body as JSON into ``model`` (strict), 400 on error."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        if not raw.strip():
            raise BadRequest("request body is required: a JSON object")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise bad_request_from(exc) from exc

    return parse


def _pod_json(pod: BaseModel, status: int = 200) -> JSONResponse:
    return JSONResponse(pod.model_dump(mode="json"), status_code=status)


def _internal_json(rec: PodRecord) -> JSONResponse:
    return JSONResponse(rec.model_dump(mode="json"))


# -- health ---------------------------------------------------------------

_health = APIRouter()


@_health.get("/healthz")
def healthz(service: Service, request: Request) -> dict[str, object]:
    """Liveness, without auth: which server this is and how many pods it holds."""
    settings: Settings = request.app.state.settings
    return {
        "status": "ok",
        "service": "localcloud",
        "backend": service.backend.name,
        "pid": os.getpid(),
        "stateDir": str(settings.state_dir.resolve()),
        "pods": service.count(),
    }


# -- RunPod REST v1 ---------------------------------------------------------

_pods = APIRouter(prefix="/v1")


@_pods.post("/pods", status_code=201)
def create_pod(service: Service, body: Annotated[PodCreateInput, Depends(json_body(PodCreateInput))]) -> JSONResponse:
    """Create a pod (201, the Pod)."""
    return _pod_json(service.create(body), 201)


@_pods.get("/pods")
def list_pods(
    service: Service,
    pod_id: Annotated[str | None, Query(alias="id")] = None,
    name: Annotated[str | None, Query()] = None,
    image_name: Annotated[str | None, Query(alias="imageName")] = None,
    desired_status: Annotated[Literal["RUNNING", "EXITED", "TERMINATED"] | None, Query(alias="desiredStatus")] = None,
    gpu_type_id: Annotated[list[str] | None, Query(alias="gpuTypeId")] = None,
    data_center_id: Annotated[list[str] | None, Query(alias="dataCenterId")] = None,
    compute_type: Annotated[Literal["GPU", "CPU"] | None, Query(alias="computeType")] = None,
) -> JSONResponse:
    """List pods, optionally filtered as RunPod's query parameters do."""
    filters = PodFilters(
        pod_id=pod_id,
        name=name,
        image_name=image_name,
        desired_status=desired_status,
        gpu_type_ids=tuple(gpu_type_id or ()),
        data_center_ids=tuple(data_center_id or ()),
        compute_type=compute_type,
    )
    return JSONResponse([p.model_dump(mode="json") for p in service.list_pods(filters)])


@_pods.get("/pods/{pod_id}")
def get_pod(service: Service, pod_id: str) -> JSONResponse:
    """Return one pod (404 if unknown)."""
    return _pod_json(service.get_pod(pod_id))


@_pods.patch("/pods/{pod_id}")
@_pods.post("/pods/{pod_id}/update")
def update_pod(
    service: Service, pod_id: str, body: Annotated[PodUpdateInput, Depends(json_body(PodUpdateInput))]
) -> JSONResponse:
    """Update a pod; changing image, env, ports or disks resets it (new container)."""
    return _pod_json(service.update(pod_id, body))


@_pods.delete("/pods/{pod_id}", status_code=204)
def delete_pod(service: Service, pod_id: str) -> Response:
    """Delete a pod (204; 404 if unknown)."""
    service.delete(pod_id)
    return Response(status_code=204)


@_pods.post("/pods/{pod_id}/stop")
def stop_pod(service: Service, pod_id: str) -> JSONResponse:
    """Stop a pod (desiredStatus EXITED)."""
    return _pod_json(service.stop(pod_id))


@_pods.post("/pods/{pod_id}/start")
def start_pod(service: Service, pod_id: str) -> JSONResponse:
    """Start a pod (desiredStatus RUNNING)."""
    return _pod_json(service.start(pod_id))


@_pods.post("/pods/{pod_id}/restart")
def restart_pod(service: Service, pod_id: str) -> JSONResponse:
    """Restart a pod in place."""
    return _pod_json(service.restart(pod_id))


@_pods.post("/pods/{pod_id}/reset")
def reset_pod(service: Service, pod_id: str) -> JSONResponse:
    """Reset a pod (fresh container, same settings)."""
    return _pod_json(service.reset(pod_id))


# -- fault injection (not RunPod API) -----------------------------------------

_faults = APIRouter(prefix="/_localcloud")


@_faults.get("/gpu-types")
def gpu_types() -> list[dict[str, object]]:
    """List the GPU catalog (RunPod ids, prices per GPU per hour)."""
    return [
        {
            "id": g.id,
            "displayName": g.display_name,
            "memoryInGb": g.memory_in_gb,
            "securePrice": g.secure_price,
            "communityPrice": g.community_price,
            "secureSpotPrice": g.secure_spot_price,
            "communitySpotPrice": g.community_spot_price,
        }
        for g in catalog.GPU_TYPES.values()
    ]


@_faults.get("/pods/{pod_id}")
def pod_internals(service: Service, pod_id: str) -> JSONResponse:
    """Return the local cloud's own record of a pod (host ports, private IP, networkCut, ...)."""
    return _internal_json(service.record(pod_id))


@_faults.post("/pods/{pod_id}/interrupt")
def interrupt_pod(service: Service, pod_id: str) -> JSONResponse:
    """Preempt a pod like a spot reclaim: killed, desiredStatus EXITED."""
    return _internal_json(service.interrupt(pod_id))


@_faults.post("/pods/{pod_id}/network/cut")
def cut_network(service: Service, pod_id: str) -> JSONResponse:
    """Cut a pod off: its published ports and the private network stop answering."""
    return _internal_json(service.set_network(pod_id, cut=True))


@_faults.post("/pods/{pod_id}/network/restore")
def restore_network(service: Service, pod_id: str) -> JSONResponse:
    """Undo a network cut."""
    return _internal_json(service.set_network(pod_id, cut=False))


# -- errors -----------------------------------------------------------------


def _error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(400, describe_validation_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return _error_response(exc.status_code, message)

    @app.exception_handler(BackendError)
    async def backend_error(_: Request, exc: BackendError) -> JSONResponse:
        status = 503 if isinstance(exc, BackendUnavailable) else 500
        log.error("backend error", extra={"fields": {"error": str(exc)}})
        return _error_response(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error_response(500, f"internal error: {type(exc).__name__}")
