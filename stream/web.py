"""The worker's one HTTP application: operator endpoints, the /v1 query API, the dashboard."""

from __future__ import annotations

from aiohttp import web

from stream.api import install_api
from stream.api.auth import TokenStore
from stream.clock import Clock
from stream.dashboard import install_dashboard
from stream.ops_routes import Readiness, install_ops_routes
from stream.settings import Settings
from stream.state.redis import AnyRedis
from stream.telemetry import Telemetry


def build_web(
    *,
    redis: AnyRedis,
    settings: Settings,
    telemetry: Telemetry,
    readiness: Readiness,
    clock: Clock,
) -> web.Application:
    tokens = None
    if settings.auth_enabled and settings.api_tokens_path is not None:
        tokens = TokenStore.from_file(settings.api_tokens_path)
    app = web.Application()
    install_ops_routes(app, readiness, telemetry)
    install_api(
        app, redis=redis, settings=settings, telemetry=telemetry, clock=clock, tokens=tokens
    )
    install_dashboard(app)
    return app
