"""A process that only serves HTTP (the ``api`` role, the collector): its app on a host and
port until SIGTERM or Ctrl-C. The worker's server is hosted by Faust instead
(stream/http/server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    name: str,
    on_stop: Callable[[], Awaitable[None]],
    on_start: Callable[[], None] = lambda: None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop serving and await ``on_stop()``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        on_start()
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("%s listening on http://%s:%d", name, host, port)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await on_stop()
    log.info("%s stopped", name)
