"""The HTTP application of a worker and of an ``api`` process: operator endpoints, the /v1
query API, the dashboard."""

from __future__ import annotations

import asyncio
import signal
from functools import partial

from aiohttp import web

from stream.dates.clock import Clock
from stream.http.api import install_api
from stream.http.api.auth import TokenFile
from stream.http.dashboard import install_dashboard
from stream.http.readiness import CountingReadiness
from stream.settings import Settings
from stream.state.connection import AnyRedis, open_redis
from stream.telemetry import Telemetry
from stream.web.ops_routes import install_ops_routes, readiness_route


def build_web(
    *,
    redis: AnyRedis,
    settings: Settings,
    telemetry: Telemetry,
    readiness: CountingReadiness,
    clock: Clock,
) -> web.Application:
    tokens = None
    app = web.Application()
    if settings.auth_enabled and settings.api_tokens_path is not None:
        tokens = TokenFile(settings.api_tokens_path)
        app.on_startup.append(partial(_reload_on_sighup, tokens))
    install_ops_routes(app, readiness, telemetry.registry)
    app.router.add_get("/readyz/counting", readiness_route(readiness.check_counting))
    install_api(
        app, redis=redis, settings=settings, telemetry=telemetry, clock=clock, tokens=tokens
    )
    install_dashboard(app)
    return app


def serving_redis(settings: Settings) -> AnyRedis:
    """The API's own bounded Redis client: a request waits ``api_busy_wait_ms`` for one of its
    ``redis_api_connections``, then is answered ``503 busy`` (stream/http/api/routes.py)."""
    s = settings
    return open_redis(
        s.redis, max_connections=s.redis_api_connections, wait_s=s.api_busy_wait_ms / 1000
    )


async def _reload_on_sighup(tokens: TokenFile, _app: web.Application) -> None:
    """``kill -HUP`` re-reads the tokens file at once (a change is also noticed by itself)."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, tokens.reload)
