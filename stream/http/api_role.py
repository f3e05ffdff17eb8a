"""``upsell-stream api``: a process that serves the /v1 API, the dashboard and the operator
endpoints without counting, for deployments that scale reads apart from writes.

A worker serves the same routes beside its counting (the default, for small setups and
``make run``); its API then shares one event loop with batch decoding. An ``api`` process
shares nothing with counting but Redis: it reads the counters the workers write, joins no
consumer group and never talks to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from stream.dates.clock import Clock, system_clock
from stream.http.web import build_web, serving_redis
from stream.settings import Settings
from stream.state.redis import RETRIABLE, AnyRedis
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class ApiReadiness:
    """Ready when Redis answers; an api process never counts, so /readyz/counting is 503."""

    def __init__(self, redis: AnyRedis, timeout_s: float = 1.0) -> None:
        self._redis = redis
        self._timeout_s = timeout_s

    async def check(self) -> tuple[bool, dict[str, object]]:
        try:
            ok = bool(await asyncio.wait_for(self._redis.ping(), self._timeout_s))
        except (TimeoutError, *RETRIABLE):
            ok = False
        return ok, {"redis": ok}

    async def check_counting(self) -> tuple[bool, dict[str, object]]:
        return False, {"role": "api", "counting": False}


@dataclass
class ApiProcess:
    web_app: web.Application
    redis: AnyRedis
    telemetry: Telemetry

    async def close(self) -> None:
        await self.redis.aclose()


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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(process.web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.api_host, settings.api_port, reuse_address=True).start()
        log.info(
            "API (api role, no counting) on http://%s:%d", settings.api_host, settings.api_port
        )
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await process.close()
    log.info("api stopped")
