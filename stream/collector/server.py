"""Runs a collector: its aiohttp app on the collector port until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from stream.collector.producer import EventProducer
from stream.state.redis import RETRIABLE, AnyRedis

log = logging.getLogger(__name__)


class CollectorReadiness:
    """Ready when the producer is connected to the broker and Redis (the keys) answers."""

    def __init__(self, producer: EventProducer, redis: AnyRedis, timeout_s: float = 1.0) -> None:
        self._producer = producer
        self._redis = redis
        self._timeout_s = timeout_s

    async def __call__(self) -> tuple[bool, dict[str, object]]:
        try:
            redis_ok = bool(await asyncio.wait_for(self._redis.ping(), self._timeout_s))
        except (TimeoutError, *RETRIABLE):
            redis_ok = False
        checks: dict[str, object] = {"broker": self._producer.started, "redis": redis_ok}
        return all(v is True for v in checks.values()), checks


async def serve(
    app: web.Application,
    host: str,
    port: int,
    on_start: Callable[[], None],
    on_stop: Callable[[], Awaitable[None]],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        on_start()
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("collector listening on http://%s:%d", host, port)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await on_stop()
    log.info("collector stopped")
