"""Whether Redis answers, and retrying with backoff while it does not.

Logs once per change of state ("lost", "back"), keeps ``upsell_redis_up`` current and counts
errors and reconnects, so an outage is one log line each way rather than one per attempt.
``upsell_redis_up`` follows the outcome of every store call (``observe``, wired as the store's
``on_outcome``) and of a ping every few seconds (:class:`RedisPing`), so one failed call is
undone by the next that succeeds, also when the worker is idle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from mode import Service

from stream.backoff import Backoff
from stream.state.redis import RETRIABLE
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pingable(Protocol):
    async def ping(self) -> bool: ...


class RedisPing(Service):
    """Pings Redis every ``interval_s``: the store reports the outcome to StoreHealth. With
    ``memory``, reads Redis's used and maximum memory every ``memory_every`` pings into
    ``upsell_redis_memory_bytes`` (UpsellRedisMemoryHigh: with noeviction a full Redis refuses
    every write, and counting stops)."""

    def __init__(
        self,
        store: Pingable,
        interval_s: float = 5.0,
        *,
        memory: Callable[[], Awaitable[tuple[int, int]]] | None = None,
        telemetry: Telemetry | None = None,
        memory_every: int = 6,
    ) -> None:
        super().__init__()
        self.store = store
        self.interval_s = interval_s
        self.memory = memory
        self.telemetry = telemetry
        self.memory_every = memory_every

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def _run(self) -> None:
        pings = 0
        while not self.should_stop:
            await self.sleep(self.interval_s)
            if await self.store.ping() and pings % self.memory_every == 0:
                await self.read_memory()
            pings += 1

    async def read_memory(self) -> None:
        if self.memory is None or self.telemetry is None:
            return
        try:
            used, limit = await self.memory()
        except (StoreUnavailable, *RETRIABLE) as exc:
            log.debug("redis memory not read: %s", exc)
            return
        self.telemetry.redis_memory.labels("used").set(used)
        self.telemetry.redis_memory.labels("max").set(limit)


class StoreHealth:
    def __init__(
        self, telemetry: Telemetry, *, first_delay_s: float = 0.05, max_delay_s: float = 2.0
    ) -> None:
        self.telemetry = telemetry
        self.up = True
        self._first = first_delay_s
        self._max = max_delay_s
        telemetry.redis_up.set(1)

    def failed(self, operation: str, exc: BaseException) -> None:
        self.telemetry.redis_errors.labels(operation).inc()
        if self.up:
            self.up = False
            self.telemetry.redis_up.set(0)
            log.warning("redis lost (%s): pausing counting until it answers again", exc)

    def observe(self, error: BaseException | None) -> None:
        """The outcome of one Redis call: None when it answered (errors are counted by the
        caller, per operation)."""
        if error is None:
            self.succeeded()
        elif self.up:
            self.up = False
            self.telemetry.redis_up.set(0)
            log.warning("redis lost (%s): pausing counting until it answers again", error)

    def succeeded(self) -> None:
        if not self.up:
            self.up = True
            self.telemetry.redis_up.set(1)
            self.telemetry.redis_reconnects.inc()
            log.warning("redis back: resuming from the offsets stored in redis")

    async def retry(self, call: Callable[[], Awaitable[T]], operation: str = "apply") -> T:
        """Await ``call()`` until it does not raise StoreUnavailable, backing off in between."""
        backoff = Backoff(self._first, self._max)
        while True:
            try:
                result = await call()
            except StoreUnavailable as exc:
                self.failed(operation, exc)
                await backoff.wait()
                continue
            self.succeeded()
            return result
