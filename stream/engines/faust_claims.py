"""The Faust engine's takeover: Faust reads an owned partition from the Redis checkpoint only,
and no message of another claim is counted or acknowledged.

Three holes, each seen losing views with two workers and a kill -9 or a rejoin (a few dozen
records of a partition, from Redis's checkpoint up to Faust's committed offset):

- Faust resumes fetching once its recovery has sought every partition to Kafka's committed
  offset (``Consumer.perform_seek``). That recovery starts before the ``on_partitions_assigned``
  signal, so it ran while the engine was still claiming in Redis: the first fetch began at the
  committed offset, and its messages arrived after the claim and were counted from there.
  :class:`SeekGate` wraps ``perform_seek`` from the start and holds it until this assignment's
  claims are done, then seeks every owned partition to its resume offset.
- Faust's committed offset was ahead of Redis at all because the engine acknowledged messages
  it did not count (a partition just revoked, a fence). :func:`withhold` keeps those messages
  from ever being acknowledged, so Faust never commits past a record nobody counted.
- ``take_events`` keeps its buffer across a rebalance (``stream_wait_empty=False``): messages
  fetched in an earlier consumer generation arrive after the new claim. :class:`Generations`
  keeps, per partition, the generation it was claimed in; other messages are stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Key = tuple[str, int]


class SeekGate:
    """Faust's ``perform_seek``, then a seek of every owned partition to its resume offset,
    never before the current assignment's claims are done (Faust resumes fetching after it)."""

    def __init__(self) -> None:
        self._claimed = asyncio.Event()  # set once this assignment's partitions are claimed
        self._installed = False

    def install(self, consumer: Any, seek_owned: Callable[[], Awaitable[None]]) -> None:
        if self._installed:
            return
        original = consumer.perform_seek

        async def perform_seek() -> None:
            await original()
            await self._claimed.wait()
            await seek_owned()

        consumer.perform_seek = perform_seek
        self._installed = True

    def claiming(self) -> None:
        """Partitions are being revoked or assigned: hold Faust's seeks until :meth:`claimed`."""
        self._claimed.clear()

    def claimed(self) -> None:
        self._claimed.set()


class Generations:
    """The consumer generation each owned partition was claimed in (None: not tracked)."""

    def __init__(self) -> None:
        self._of: dict[Key, int] = {}

    def claimed(self, key: Key, generation: int) -> None:
        self._of[key] = generation

    def forget(self, key: Key) -> None:
        self._of.pop(key, None)

    def current(self, key: Key, messages: list[Any]) -> list[Any]:
        """``messages`` fetched in the generation ``key`` was claimed in; the others (fetched
        before the rebalance, still buffered) are withheld."""
        generation = self._of.get(key)
        if generation is None:
            return messages
        kept: list[Any] = []
        stale: list[Any] = []
        for m in messages:
            (kept if getattr(m, "generation_id", generation) == generation else stale).append(m)
        withhold(stale)
        return kept


def withhold(messages: Iterable[Any]) -> None:
    """Never acknowledge ``messages`` (not counted by this worker): Faust's ``Message.ack``
    does nothing for a message already marked acked, so no commit passes them."""
    for m in messages:
        m.acked = True
