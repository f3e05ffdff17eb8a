"""``upsell-stream api``: a process that serves the /v1 API, the dashboard and the operator
endpoints without counting, for deployments that scale reads apart from writes.

A worker serves the same routes beside its counting (the default, for small setups and
``make run``); its API then shares one event loop with batch decoding. An ``api`` process
shares nothing with counting but Redis: it reads the counters the workers write, joins no
consumer group and never talks to Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from stream.dates.clock import Clock, system_clock
from stream.http.application import build_web, serving_redis
from stream.http.readiness import ApiReadiness
from stream.settings import Settings
from stream.state.connection import close_redis
from stream.state.redis import AnyRedis
from stream.telemetry import Telemetry
from stream.web.serve import serve_until_stopped


@dataclass
class ApiProcess:
    web_app: web.Application
    redis: AnyRedis
    telemetry: Telemetry

    async def close(self) -> None:
        await close_redis(self.redis)


def build_api_process(settings: Settings, *, clock: Clock = system_clock) -> ApiProcess:
    """The api role's app: the worker's routes over the bounded serving pool, nothing else."""
    telemetry = Telemetry()
    redis = serving_redis(settings)
    web_app = build_web(
        redis=redis,
        settings=settings,
        telemetry=telemetry,
        readiness=ApiReadiness(redis),
        clock=clock,
    )
    return ApiProcess(web_app, redis, telemetry)


async def serve_api(settings: Settings) -> None:
    """Serve on UPSELL_API_HOST:UPSELL_API_PORT until SIGTERM or Ctrl-C."""
    process = build_api_process(settings)
    await serve_until_stopped(
        process.web_app,
        settings.api_host,
        settings.api_port,
        name="API (api role, no counting)",
        on_stop=process.close,
    )
