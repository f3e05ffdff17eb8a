"""``/readyz``: the broker answers, Redis answers, and this worker has joined its group."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from stream.state.redis import RedisStore


class WorkerReadiness:
    def __init__(
        self,
        *,
        bootstrap: str,
        store: RedisStore,
        settings_loaded: Callable[[], bool],
        partitions_assigned: Callable[[], bool],
        timeout_s: float = 1.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._store = store
        self._settings_loaded = settings_loaded
        self._partitions_assigned = partitions_assigned
        self._timeout = timeout_s

    async def check(self) -> tuple[bool, dict[str, object]]:
        broker, redis = await asyncio.gather(self._broker(), self._redis())
        checks: dict[str, object] = {
            "broker": broker,
            "redis": redis,
            "settings_loaded": self._settings_loaded(),
            "partitions_assigned": self._partitions_assigned(),
        }
        return all(v is True for v in checks.values()), checks

    async def _redis(self) -> bool:
        try:
            return await asyncio.wait_for(self._store.ping(), self._timeout)
        except TimeoutError:
            return False

    async def _broker(self) -> bool:
        for server in self._bootstrap.split(","):
            host, _, port = server.rpartition(":")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host.strip("[]"), int(port)), self._timeout
                )
            except (OSError, TimeoutError):
                continue
            writer.close()
            await writer.wait_closed()
            return True
        return False
