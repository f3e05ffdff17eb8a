"""Readiness of a worker and of an ``api`` process, split by what depends on it.

``/readyz`` is the API's readiness: the Service sends only API traffic, and the API reads
Redis and nothing else, so it asks Redis only. A Kafka outage then leaves the dashboards up, and
a pod does not turn unready because the group gave it no partitions.

``/readyz/counting`` adds what counting needs: the broker answers, the shop settings are loaded,
Redis's state format is one this version knows, and the worker has joined its group. Tests and
``upsell-stream dev`` wait on it; operators watch counting through the lag and stall metrics
and their alerts, not through a probe. An ``api`` process never counts: it answers 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from stream.state.redis import AnyRedis, RedisStore
from stream.web.readiness import Checks, Readiness, answers_within


class CountingReadiness(Readiness, Protocol):
    """A worker's ``/readyz`` (:meth:`check`) and ``/readyz/counting``."""

    async def check_counting(self) -> Checks: ...


class ApiReadiness:
    """Ready when Redis answers; an api process never counts, so /readyz/counting is 503."""

    def __init__(self, redis: AnyRedis, timeout_s: float = 1.0) -> None:
        self._redis = redis
        self._timeout_s = timeout_s

    async def check(self) -> Checks:
        ok = await answers_within(self._redis.ping, self._timeout_s)
        return ok, {"redis": ok}

    async def check_counting(self) -> Checks:
        return False, {"role": "api", "counting": False}


class WorkerReadiness:
    def __init__(
        self,
        *,
        bootstrap: str,
        store: RedisStore,
        settings_loaded: Callable[[], bool],
        partitions_assigned: Callable[[], bool],
        state_format_known: Callable[[], bool] = lambda: True,
        records_lost: Callable[[], dict[str, int]] = dict,
        timeout_s: float = 1.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._store = store
        self._settings_loaded = settings_loaded
        self._partitions_assigned = partitions_assigned
        self._state_format_known = state_format_known
        self._records_lost = records_lost
        self._timeout = timeout_s

    async def check(self) -> Checks:
        """The API's readiness: Redis answers."""
        redis = await answers_within(self._store.ping, self._timeout)
        return redis, {"redis": redis}

    async def check_counting(self) -> Checks:
        """Ready to count: Redis and the broker answer, settings loaded, group joined."""
        broker, redis = await asyncio.gather(
            self._broker(), answers_within(self._store.ping, self._timeout)
        )
        checks: dict[str, object] = {
            "broker": broker,
            "redis": redis,
            "settings_loaded": self._settings_loaded(),
            "partitions_assigned": self._partitions_assigned(),
            "state_format": self._state_format_known(),
        }
        ready = all(v is True for v in checks.values())
        lost = self._records_lost()
        if lost:  # a detail, not a readiness condition: counting goes on
            checks["records_lost"] = lost
        return ready, checks

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
