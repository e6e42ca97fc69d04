"""The HTTP API: RunPod's REST v2 under ``/v2``, fault injection under ``/_localcloud``.

``create_app`` builds a FastAPI app around a backend, a state directory and
a clock. Every ``/v2`` and ``/_localcloud`` route needs
``Authorization: Bearer <key from <state-dir>/api_key>``; ``/healthz`` does
not. ``/v1`` answers 410 Gone, as RunPod does since it retired v1.

Bodies and query parameters are checked against RunPod's own OpenAPI
(``localcloud/reference/runpod-rest-v2-openapi.json``, see ``spec.py``);
every error is an RFC 9457 problem (``application/problem+json``).
Authenticated ``/v2`` answers carry ``RateLimit`` and ``RateLimit-Policy``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localcloud import catalog, spec
from localcloud.auth import check_bearer, ensure_api_key
from localcloud.backends import BackendError, BackendUnavailable, PodBackend, make_backend
from localcloud.clock import Clock, iso_z, utc_now
from localcloud.config import Settings
from localcloud.errors import PROBLEM_JSON, ApiError, BadRequest, NotFound, Unprocessable, problem
from localcloud.faults import Faults, RequestFault
from localcloud.models import CreatePod, PodActionRequest, UpdatePod, UpdateSshKeys
from localcloud.ratelimit import RateLimiter
from localcloud.records import PodRecord
from localcloud.service import PodService
from localcloud.store import StateStore

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

V1_GONE = (
    "RunPod REST API v1 was retired and answers 410 Gone; use REST v2 under /v2 "
    "(e.g. GET /v2/pods, POST /v2/pods/{id}/action)"
)


def create_app(
    settings: Settings,
    *,
    backend: PodBackend | None = None,
    clock: Clock = utc_now,
    rate_clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the app for ``settings``: load (or create) the API key, recover the pods.

    ``backend`` defaults to the one ``settings.backend`` names; ``clock`` lets
    tests move time (the ready delay) without sleeping, ``rate_clock`` the
    rate-limit windows.
    """
    api_key = ensure_api_key(settings.api_key_file)
    backend = backend or make_backend(settings)
    service = PodService(
        backend,
        StateStore(settings.state_file, backend.name),
        clock=clock,
        ready_delay=settings.ssh_ready_delay,
        stock=catalog.Stock(),
        faults=Faults(),
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
    app.add_middleware(
        Gateway, api_key=api_key, faults=service.faults, limiter=RateLimiter(settings.rate_limits, rate_clock)
    )
    app.include_router(_health)
    app.include_router(_v2)
    app.include_router(_faults)
    return app


# -- the gateway: v1 retired, auth, faults, rate limits ---------------------------


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class Gateway:
    """ASGI middleware in front of every route.

    ``/v1/...`` answers 410; ``/v2`` and ``/_localcloud`` need the bearer key
    (401 before routing, so unknown paths answer 401 to strangers). For
    ``/v2``: injected 429/403 faults, then the rate limiter, then the route,
    whose answer gets the RateLimit headers.
    """

    def __init__(self, app: ASGIApp, api_key: str, faults: Faults, limiter: RateLimiter) -> None:
        self.app = app
        self.api_key = api_key
        self.faults = faults
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 410/401/403/429 where due; else pass on, adding RateLimit headers to /v2 answers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _under(path, "/v1"):
            await _problem_response(410, V1_GONE)(scope, receive, send)
            return
        if not (_under(path, "/v2") or _under(path, "/_localcloud")):
            await self.app(scope, receive, send)
            return
        try:
            check_bearer(Headers(scope=scope).get("authorization"), self.api_key)
        except ApiError as exc:
            await _problem_response(exc.status, exc.detail)(scope, receive, send)
            return
        if not _under(path, "/v2"):
            await self.app(scope, receive, send)
            return
        headers = {"RateLimit-Policy": self.limiter.policy}
        fault = self.faults.take_request_fault(scope["method"], path)
        if fault is not None:
            status, retry_after = fault
            headers["RateLimit"] = self.limiter.peek()
            if status == 429:
                headers["Retry-After"] = str(retry_after)
                detail = "rate limit exceeded for the minute window (injected by /_localcloud/faults/rate-limit)"
            else:
                detail = "access denied (injected by /_localcloud/faults/forbidden)"
            await _problem_response(status, detail, headers=headers)(scope, receive, send)
            return
        decision = self.limiter.hit()
        headers["RateLimit"] = decision.state
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after)
            await _problem_response(429, "rate limit exceeded", headers=headers)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableHeaders(scope=message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def get_service(request: Request) -> PodService:
    """FastAPI dependency: the app's PodService."""
    return request.app.state.service


Service = Annotated[PodService, Depends(get_service)]


async def json_body(request: Request, schema_name: str) -> Any:
    """Read the body as JSON and check it against the spec's ``schema_name`` (400 unparsable, 422 invalid)."""
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("request body is required: a JSON object")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(raw, parse_constant=no_constants)
    except ValueError as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    errors = spec.validate(schema_name, data)
    if errors:
        raise Unprocessable(errors)
    return data


def parse_model(model: type[M], data: Any) -> M:
    """Build ``model`` from a body that passed the spec (a mismatch is still a 422)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(
            [f"$.{'.'.join(map(str, e['loc']))}: {e['msg']}".replace("$.:", "$:") for e in exc.errors()]
        ) from None


def query(request: Request, path: str) -> dict[str, Any]:
    """Parse the query parameters of operation ``path`` (422 when they break the spec)."""
    values, errors = spec.parse_query(path, request.method, request.query_params)
    if errors:
        raise Unprocessable(errors, "Request parameter validation failed.")
    return values


# -- health ---------------------------------------------------------------

_health = APIRouter()


@_health.get("/healthz")
def healthz(service: Service, request: Request) -> dict[str, object]:
    """Liveness, without auth: which server this is and how many pods it holds."""
    settings: Settings = request.app.state.settings
    return {
        "status": "ok",
        "service": "localcloud",
        "api": "v2",
        "backend": service.backend.name,
        "pid": os.getpid(),
        "stateDir": str(settings.state_dir.resolve()),
        "pods": service.count(),
    }


# -- RunPod REST v2 ---------------------------------------------------------

_v2 = APIRouter(prefix="/v2")


@_v2.get("/pods")
def list_pods(service: Service, request: Request) -> JSONResponse:
    """List pods (``{"pods": [...]}``); the local cloud has no cluster pods to include."""
    query(request, "/v2/pods")
    return JSONResponse({"pods": service.list_pods()})


@_v2.post("/pods", status_code=201)
async def create_pod(service: Service, request: Request) -> JSONResponse:
    """Create a pod (201, the Pod, PROVISIONING)."""
    body = parse_model(CreatePod, await json_body(request, "CreatePodRequest"))
    return JSONResponse(service.create(body), status_code=201)


@_v2.get("/pods/{pod_id}")
def get_pod(service: Service, pod_id: str) -> JSONResponse:
    """Return one pod (404 if unknown)."""
    return JSONResponse(service.get_pod(pod_id))


@_v2.patch("/pods/{pod_id}")
async def update_pod(service: Service, pod_id: str, request: Request) -> JSONResponse:
    """Update a pod; changing image, args, disk, ports, env or mounts recreates its container."""
    body = parse_model(UpdatePod, await json_body(request, "UpdatePodRequest"))
    return JSONResponse(service.update(pod_id, body))


@_v2.delete("/pods/{pod_id}", status_code=204)
def delete_pod(service: Service, pod_id: str) -> Response:
    """Terminate a pod (204; 404 if unknown)."""
    service.delete(pod_id)
    return Response(status_code=204)


@_v2.post("/pods/{pod_id}/action")
async def pod_action(service: Service, pod_id: str, request: Request) -> Response:
    """Start, stop, restart (200 with the pod) or terminate (204); 409 if not valid now."""
    service.record(pod_id)  # 404 before 422 for an unknown pod
    body = parse_model(PodActionRequest, await json_body(request, "PodActionRequest"))
    pod = service.action(pod_id, body.action)
    return Response(status_code=204) if pod is None else JSONResponse(pod)


def _parse_time(value: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.split("/", 1)[0])
    except ValueError:
        raise Unprocessable([f"{what}: {value!r} is not an RFC 3339 date-time"]) from None
    if moment.tzinfo is None:
        raise Unprocessable([f"{what}: {value!r} has no time zone (e.g. 2026-06-01T12:00:00Z)"])
    return moment


#: Seconds between two looks at a pod's log while its stream is open.
LOG_POLL_INTERVAL = 0.5


def _sse_event(stamp: str, seq: int, source: str, text: str) -> str:
    data = json.dumps({"ts": stamp, "source": source, "line": text})
    return f"id: {stamp}/{seq:012d}\ndata: {data}\n\n"


@_v2.get("/pods/{pod_id}/logs")
async def pod_logs(service: Service, pod_id: str, request: Request) -> Response:
    """Stream the pod's log as Server-Sent Events (``source`` container and/or system), as RunPod does.

    First the backfill (the last ``tail`` lines, default 100, at most 5000;
    or, with ``since`` or ``Last-Event-ID``, every line after that time), then
    the new lines as they come, for as long as the client stays and the pod
    runs (a stopped or gone pod writes nothing more: the stream ends). Each
    event: ``id: <ts>/<seq>`` and ``data: {"ts", "source", "line"}``.
    """
    service.record(pod_id)
    params = query(request, "/v2/pods/{id}/logs")
    since = _parse_time(params["since"], "query.since") if "since" in params else None
    last_event = request.headers.get("last-event-id")
    if last_event:
        since = _parse_time(last_event, "header.Last-Event-ID")
    tail = params.get("tail", 100) if since is None else 5000
    source = params.get("source")
    backfill = await run_in_threadpool(service.logs, pod_id, source=source, tail=tail, since=since)

    def live() -> bool:
        try:
            rec = service.record(pod_id)
        except NotFound:
            return False
        return rec.state == "RUNNING"

    async def events() -> AsyncIterator[str]:
        seq = 0
        # The lines already sent at or after the newest time sent: a later
        # look at the log (by time, to the second) gives them again.
        sent: set[tuple[datetime, str, str]] = set()
        newest: datetime | None = None
        batch = backfill
        while True:
            for line_source, line in batch:
                key = (line.ts, line_source, line.line)
                if newest is not None and (line.ts < newest or key in sent):
                    continue
                if newest is None or line.ts > newest:
                    sent = {k for k in sent if k[0] >= line.ts - timedelta(seconds=2)}
                    newest = line.ts
                sent.add(key)
                seq += 1
                yield _sse_event(iso_z(line.ts), seq, line_source, line.line)
            if tail == 0 and since is None and newest is None:
                newest = utc_now()
            if not live() or await request.is_disconnected():
                return
            await asyncio.sleep(LOG_POLL_INTERVAL)
            after = newest - timedelta(seconds=1) if newest is not None else None
            batch = await run_in_threadpool(service.logs, pod_id, source=source, tail=5000, since=after)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"},
    )


# -- catalog ----------------------------------------------------------------------

_AVAILABILITY_ONLY = ("product", "count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion")


def _gpu_query(request: Request, path: str) -> dict[str, Any]:
    params = query(request, path)
    wants = "AVAILABILITY" in params.get("include", [])
    if wants and not params.get("product"):
        raise BadRequest("product is required with include=AVAILABILITY (e.g. product=POD)")
    stray = [name for name in _AVAILABILITY_ONLY if name in params and not wants]
    if stray:
        raise BadRequest(f"{', '.join(stray)} valid only with include=AVAILABILITY")
    if params.get("cudaVersions") and "minCudaVersion" in params:
        raise BadRequest("cudaVersions and minCudaVersion are mutually exclusive; send one")
    return params


def _gpu_json(gpu: catalog.GpuType, params: dict[str, Any], stock: catalog.Stock, *, single: bool) -> dict[str, Any]:
    price: dict[str, float] = {"secure": gpu.secure_price, "community": gpu.community_price}
    if gpu.pool:
        price["serverless"] = round(gpu.secure_price * 1.5, 2)
    out: dict[str, Any] = {
        "id": gpu.id,
        "name": gpu.name,
        "pool": gpu.pool,
        "manufacturer": gpu.manufacturer,
        "memory": gpu.memory,
        "secure": True,
        "community": True,
        "price": price,
        "maxCount": {"secure": gpu.max_count_secure, "community": gpu.max_count_community},
    }
    if "AVAILABILITY" not in params.get("include", []):
        return out
    cloud = params.get("cloud", "SECURE")
    countries = set(params.get("countryCodes", []))
    centers = [
        dc
        for dc in catalog.DATA_CENTERS.values()
        if dc.offers(gpu) and (not countries or catalog.COUNTRIES.get(dc.id) in countries)
    ]
    versions = list(catalog.CUDA_VERSIONS)
    if params.get("cudaVersions"):
        versions = [v for v in versions if v in params["cudaVersions"]]
    if "minCudaVersion" in params:
        floor = tuple(int(p) for p in params["minCudaVersion"].split("."))
        versions = [v for v in versions if tuple(int(p) for p in v.split("."))[: len(floor)] >= floor]
    level = stock.level(gpu.id)
    if params.get("count", 1) > gpu.max_count(cloud) or not versions or not centers:
        level = "NONE"
    out["availability"] = level
    if level != "NONE":
        out["dataCenters"] = [{"id": dc.id, "name": dc.name, "availability": level} for dc in centers]
    elif not single and countries and not centers:
        return {}
    if gpu.manufacturer == "NVIDIA":
        out["cudaVersions"] = [{"version": v, "available": level != "NONE"} for v in versions]
    return out


@_v2.get("/catalog/gpus")
def list_gpu_types(service: Service, request: Request) -> JSONResponse:
    """List the GPU types with prices (and availability with include=AVAILABILITY&product=POD)."""
    params = _gpu_query(request, "/v2/catalog/gpus")
    gpus = [_gpu_json(g, params, service.stock, single=False) for g in catalog.GPU_TYPES.values()]
    return JSONResponse({"gpus": [g for g in gpus if g]})


@_v2.get("/catalog/gpus/{gpu_id}")
def get_gpu_type(service: Service, gpu_id: str, request: Request) -> JSONResponse:
    """Return one GPU type (404 if unknown)."""
    params = _gpu_query(request, "/v2/catalog/gpus/{id}")
    gpu = catalog.get_gpu_type(gpu_id)
    if gpu is None:
        raise NotFound(f"GPU type {gpu_id!r} not found")
    return JSONResponse(_gpu_json(gpu, params, service.stock, single=True))


def _dc_json(dc: catalog.DataCenter, params: dict[str, Any], stock: catalog.Stock) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": dc.id,
        "name": dc.name,
        "region": dc.region,
        "globalNetwork": dc.global_network,
        "networkVolumeTypes": list(dc.network_volume_types),
        "compliance": list(dc.compliance),
    }
    if "GPU_AVAILABILITY" in params.get("include", []):
        offered = [g for g in catalog.GPU_TYPES.values() if dc.offers(g)]
        if offered:
            out["gpuAvailability"] = [{"id": g.id, "name": g.name, "availability": stock.level(g.id)} for g in offered]
    return out


@_v2.get("/catalog/datacenters")
def list_data_centers(service: Service, request: Request) -> JSONResponse:
    """List the data centres (filters: regions, networkVolumeTypes, compliance, globalNetwork)."""
    params = query(request, "/v2/catalog/datacenters")
    regions = set(params.get("regions", []))
    volumes = set(params.get("networkVolumeTypes", []))
    compliance = set(params.get("compliance", []))
    centers = [
        dc
        for dc in catalog.DATA_CENTERS.values()
        if (not regions or dc.region in regions)
        and volumes <= set(dc.network_volume_types)
        and compliance <= set(dc.compliance)
        and params.get("globalNetwork", dc.global_network) == dc.global_network
    ]
    return JSONResponse({"dataCenters": [_dc_json(dc, params, service.stock) for dc in centers]})


@_v2.get("/catalog/datacenters/{dc_id}")
def get_data_center(service: Service, dc_id: str, request: Request) -> JSONResponse:
    """Return one data centre (404 if unknown)."""
    params = query(request, "/v2/catalog/datacenters/{id}")
    dc = catalog.DATA_CENTERS.get(dc_id)
    if dc is None:
        raise NotFound(f"data center {dc_id!r} not found")
    return JSONResponse(_dc_json(dc, params, service.stock))


# -- account ------------------------------------------------------------------------


@_v2.get("/account/ssh-keys")
def get_ssh_keys(service: Service) -> JSONResponse:
    """Return the account's registered SSH public keys."""
    return JSONResponse({"keys": service.ssh_keys()})


@_v2.put("/account/ssh-keys")
async def put_ssh_keys(service: Service, request: Request) -> JSONResponse:
    """Replace the account's SSH public keys (startSsh puts them into pods created afterwards)."""
    body = parse_model(UpdateSshKeys, await json_body(request, "UpdateSshKeysRequest"))
    return JSONResponse({"keys": service.set_ssh_keys(body.keys)})


# -- fault injection (not RunPod API) -----------------------------------------

_faults = APIRouter(prefix="/_localcloud")


class _FaultBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RequestFaultBody(_FaultBody):
    """``POST /_localcloud/faults/rate-limit`` and ``.../forbidden``."""

    count: int = Field(1, ge=0)
    retryAfter: int = Field(1, ge=0)  # noqa: N815 - JSON name
    method: str | None = None
    path: str | None = None


class CountBody(_FaultBody):
    """``POST /_localcloud/faults/capacity`` and ``.../provisioning``."""

    count: int = Field(1, ge=0)


class StuckBody(_FaultBody):
    """``POST /_localcloud/pods/{id}/provisioning``."""

    stuck: bool = True


class ErrorBody(_FaultBody):
    """``POST /_localcloud/pods/{id}/error``."""

    detail: str = "container failed (injected by /_localcloud)"


async def _fault_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise Unprocessable([f"$.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None


@_faults.get("/faults")
def pending_faults(service: Service) -> dict[str, Any]:
    """Return the pending faults."""
    return service.faults.as_json()


@_faults.delete("/faults", status_code=204)
def clear_faults(service: Service) -> Response:
    """Forget every pending fault and reset the stock table."""
    service.faults.clear()
    service.stock.reset()
    return Response(status_code=204)


@_faults.post("/faults/rate-limit")
async def fault_rate_limit(service: Service, request: Request) -> dict[str, Any]:
    """The next ``count`` /v2 requests (optionally only ``method`` and paths under ``path``) answer 429."""
    body = await _fault_body(request, RequestFaultBody)
    service.faults.set_rate_limit(RequestFault(body.count, body.retryAfter, body.method, body.path))
    return service.faults.as_json()


@_faults.post("/faults/forbidden")
async def fault_forbidden(service: Service, request: Request) -> dict[str, Any]:
    """The next ``count`` /v2 requests (optionally only ``method`` and paths under ``path``) answer 403."""
    body = await _fault_body(request, RequestFaultBody)
    service.faults.set_forbidden(RequestFault(body.count, body.retryAfter, body.method, body.path))
    return service.faults.as_json()


@_faults.post("/faults/capacity")
async def fault_capacity(service: Service, request: Request) -> dict[str, Any]:
    """The next ``count`` creates fail for lack of capacity (400, as RunPod answers it)."""
    service.faults.set_capacity((await _fault_body(request, CountBody)).count)
    return service.faults.as_json()


@_faults.post("/faults/provisioning")
async def fault_provisioning(service: Service, request: Request) -> dict[str, Any]:
    """The next ``count`` created pods stay in PROVISIONING (until released or stopped)."""
    service.faults.set_provisioning((await _fault_body(request, CountBody)).count)
    return service.faults.as_json()


@_faults.get("/stock")
def get_stock(service: Service) -> dict[str, Any]:
    """Return the availability level of every GPU type."""
    return {"gpus": service.stock.table()}


@_faults.put("/stock")
async def put_stock(service: Service, request: Request) -> dict[str, Any]:
    """Set availability levels: ``{"gpus": {"<gpu id>": "NONE"|"LOW"|"MEDIUM"|"HIGH"}}`` (merged)."""

    class StockBody(_FaultBody):
        gpus: dict[str, Literal["NONE", "LOW", "MEDIUM", "HIGH"]]

    body = await _fault_body(request, StockBody)
    unknown = [g for g in body.gpus if g not in catalog.GPU_TYPES]
    if unknown:
        raise BadRequest(f"gpus: unknown GPU type {', '.join(map(repr, unknown))} (GET /v2/catalog/gpus lists them)")
    service.stock.set(dict(body.gpus))
    return {"gpus": service.stock.table()}


def _internal_json(rec: PodRecord) -> JSONResponse:
    return JSONResponse(rec.model_dump(mode="json", exclude={"events", "injected_env"}))


@_faults.get("/pods/{pod_id}")
def pod_internals(service: Service, pod_id: str) -> JSONResponse:
    """Return the local cloud's own record of a pod (host ports, private and global IP, network_cut, ...)."""
    return _internal_json(service.record(pod_id))


@_faults.post("/pods/{pod_id}/interrupt")
def interrupt_pod(service: Service, pod_id: str) -> JSONResponse:
    """Kill a running pod as a host failure would: EXITED."""
    return _internal_json(service.interrupt(pod_id))


@_faults.post("/pods/{pod_id}/error")
async def error_pod(service: Service, pod_id: str, request: Request) -> JSONResponse:
    """Put a pod into ERROR (its container killed)."""
    service.record(pod_id)
    return _internal_json(service.set_error(pod_id, (await _fault_body(request, ErrorBody)).detail))


@_faults.post("/pods/{pod_id}/provisioning")
async def stuck_pod(service: Service, pod_id: str, request: Request) -> JSONResponse:
    """Hold a pod in PROVISIONING (``{"stuck": true}``) or release it (``{"stuck": false}``)."""
    service.record(pod_id)
    return _internal_json(service.set_stuck(pod_id, stuck=(await _fault_body(request, StuckBody)).stuck))


@_faults.post("/pods/{pod_id}/network/cut")
def cut_network(service: Service, pod_id: str) -> JSONResponse:
    """Cut a pod off: its published ports and private networks stop answering."""
    return _internal_json(service.set_network(pod_id, cut=True))


@_faults.post("/pods/{pod_id}/network/restore")
def restore_network(service: Service, pod_id: str) -> JSONResponse:
    """Undo a network cut."""
    return _internal_json(service.set_network(pod_id, cut=False))


# -- errors -----------------------------------------------------------------


def _problem_response(
    status: int, detail: str, errors: list[str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(problem(status, detail, errors), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _problem_response(exc.status, exc.detail, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()]
        return _problem_response(422, "Request validation failed.", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            detail = f"not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} not allowed on {request.url.path}"
        else:
            detail = str(exc.detail)
        return _problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(BackendError)
    async def backend_error(_: Request, exc: BackendError) -> JSONResponse:
        status = 503 if isinstance(exc, BackendUnavailable) else 500
        log.error("backend error", extra={"fields": {"error": str(exc)}})
        return _problem_response(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _problem_response(500, f"internal error: {type(exc).__name__}")
