"""Operator endpoints every server has: ``/healthz`` (alive), ``/readyz`` (it can answer:
see its :class:`Readiness`) and ``/metrics`` (its Prometheus registry, text format)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream.web.readiness import Checks, Readiness


def install_ops_routes(
    app: web.Application, readiness: Readiness, registry: CollectorRegistry
) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readiness_route(readiness.check))
    app.router.add_get("/metrics", metrics)


def readiness_route(check: Callable[[], Awaitable[Checks]]) -> Handler:
    """A route answering ``check()``: 200 ``ready`` or 503 ``not_ready``, with the checks."""

    async def answer(_request: web.Request) -> web.StreamResponse:
        ready, checks = await check()
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    return answer
