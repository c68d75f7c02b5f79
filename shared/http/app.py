"""The FastAPI application shell every service shares: probes, metrics, problem details.

`/healthz` answers while the process is up; `/readyz` runs the service's readiness checks
(Kafka, MongoDB, consumer task) concurrently, each bounded in time, and answers 503 naming the
failing ones; `/metrics` exposes the service's own registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from importlib.metadata import version as package_version
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import ValidationProblem, add_problem_handlers, problem_response
from shared.metrics import HttpMetrics

ReadinessCheck = Callable[[], Awaitable[bool]]
# The OpenAPI documents' info.version: the distribution's own version (pyproject.toml), never a
# second copy of it.
API_VERSION = package_version("shinchoku")
OPERATIONS_TAG = {
    "name": "operations",
    "description": "Probes (/healthz, /readyz) and Prometheus metrics (/metrics).",
}
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


class MetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead): latency per route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.request_seconds.labels(method=method, route=template).observe(
                time.perf_counter() - started
            )
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()


async def run_readiness(checks: Mapping[str, ReadinessCheck], timeout_s: float) -> dict[str, bool]:
    async def one(check: ReadinessCheck) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                return await check()
        except Exception:
            return False

    names = list(checks)
    results = await asyncio.gather(*(one(checks[name]) for name in names))
    return dict(zip(names, results, strict=True))


def probes_router(registry: CollectorRegistry, timeout_s: float) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: Kafka and MongoDB reachable, background tasks alive",
        responses={
            503: {
                "description": "Not ready; `checks` names what failed and `detail` says what "
                "a check found (e.g. the partitions a consumer is stuck on)"
            }
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: Mapping[str, ReadinessCheck] = getattr(request.app.state, "readiness", {})
        results = await run_readiness(checks, timeout_s)
        ready = bool(results) and all(results.values())
        body: dict[str, Any] = {"status": "ready" if ready else "unready", "checks": results}
        # What a check found, beyond yes or no (e.g. a consumer retrying, since when, where).
        details: Mapping[str, Callable[[], object]] = getattr(
            request.app.state, "readiness_detail", {}
        )
        if details:
            body["detail"] = {name: describe() for name, describe in details.items()}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


class RefuseNulCharacters:
    """Pure ASGI middleware: a path or query holding a NUL character is a 422 problem
    (the validation answer every route documents).

    No route accepts one, and none may reach the store: PostgreSQL (under FerretDB) refuses NUL
    in any text value, so a lookup by such an id would fail as "storage unavailable" (503)
    instead of naming the caller's mistake."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "")
            or b"%00" in scope.get("query_string", b"").lower()
            or b"\x00" in scope.get("query_string", b"")
        ):
            request = Request(scope, receive)
            problem = ValidationProblem("the path or query holds a NUL character (%00)")
            await problem_response(problem, request)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Lifespan,
    registry: CollectorRegistry,
    routers: Sequence[APIRouter],
    readiness_timeout_s: float = 2.0,
    tags: Sequence[Mapping[str, str]] = (),
) -> FastAPI:
    """`tags`: name and description of each OpenAPI tag the service's routes use."""
    app = FastAPI(
        title=title,
        description=description,
        version=API_VERSION,
        lifespan=lifespan,
        openapi_tags=[dict(tag) for tag in (*tags, OPERATIONS_TAG)],
    )
    app.state.service = service
    app.state.readiness = {}
    app.state.admin_token = None
    add_problem_handlers(app)
    app.add_middleware(RefuseNulCharacters)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics.create(service, registry))
    app.include_router(probes_router(registry, readiness_timeout_s))
    for router in routers:
        app.include_router(router)
    return app
