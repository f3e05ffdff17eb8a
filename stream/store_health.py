"""Whether Redis answers, and retrying with backoff while it does not.

Logs once per change of state ("lost", "back"), keeps ``upsell_redis_up`` current and counts
errors and reconnects, so an outage is one log line each way rather than one per attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)
T = TypeVar("T")


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

    def succeeded(self) -> None:
        if not self.up:
            self.up = True
            self.telemetry.redis_up.set(1)
            self.telemetry.redis_reconnects.inc()
            log.warning("redis back: resuming from the offsets stored in redis")

    async def retry(self, call: Callable[[], Awaitable[T]], operation: str = "apply") -> T:
        """Await ``call()`` until it does not raise StoreUnavailable, backing off in between."""
        delay = self._first
        while True:
            try:
                result = await call()
            except StoreUnavailable as exc:
                self.failed(operation, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max)
                continue
            self.succeeded()
            return result
