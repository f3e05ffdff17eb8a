"""Operator endpoints: ``/healthz`` (alive), ``/readyz`` (the API can answer: Redis),
``/readyz/counting`` (also able to count), ``/metrics``."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.telemetry import Telemetry


class Readiness(Protocol):
    async def check(self) -> tuple[bool, dict[str, object]]: ...
    async def check_counting(self) -> tuple[bool, dict[str, object]]: ...


def install_ops_routes(app: web.Application, readiness: Readiness, telemetry: Telemetry) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        return _answer(*await readiness.check())

    async def readyz_counting(_request: web.Request) -> web.Response:
        return _answer(*await readiness.check_counting())

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(telemetry.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/readyz/counting", readyz_counting)
    app.router.add_get("/metrics", metrics)


def _answer(ready: bool, checks: dict[str, object]) -> web.Response:
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return web.json_response(body, status=200 if ready else 503)
