"""Hosts the aiohttp application (API, dashboard, health, metrics) as a Faust web server."""

from __future__ import annotations

import logging

from aiohttp import web
from mode import Service

log = logging.getLogger(__name__)


class ApiServer(Service):
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        super().__init__()
        self.web_app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self.web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("API listening on http://%s:%d", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
