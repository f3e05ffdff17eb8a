"""Waiting between the attempts of a retry loop: the delay doubles from a first one to a cap.

Every loop in the worker and the collector that retries something unreachable (Redis, the
broker) waits through one :class:`Backoff`, each with its own first delay and cap::

    backoff = Backoff(first_s=0.2, max_s=10.0)
    while True:
        try:
            await send()
            break
        except KafkaError:
            await backoff.wait()
"""

from __future__ import annotations

import asyncio


class Backoff:
    """The waits of one retry loop: ``first_s``, then twice the last, never more than ``max_s``."""

    def __init__(self, first_s: float, max_s: float) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"expected 0 < first_s <= max_s, got {first_s} and {max_s}")
        self._first = first_s
        self._max = max_s
        self.delay = first_s  # the next wait

    async def wait(self) -> None:
        """Sleep the next delay, then double it (up to the cap)."""
        delay = self.delay
        self.delay = min(delay * 2, self._max)
        await asyncio.sleep(delay)

    def reset(self) -> None:
        """The next wait is the first one again (after an attempt that succeeded)."""
        self.delay = self._first
