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

Faust's own bookkeeping follows the engine: :func:`position` starts Faust's read and committed
offsets of a partition where the engine seeks it, and :func:`counted_below` lets Faust commit
what the engine counted when one withheld message would stop its commits (and grow its acked
list) until the next rebalance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from faust.types import TP

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


async def position(consumer: Any, offsets: dict[Any, int]) -> None:
    """Seek Faust's consumer to ``offsets`` (partition: next offset to count) and start Faust's
    own bookkeeping of those partitions there, as its recovery seek does for committed offsets.

    ``seek_wait`` moves aiokafka's position only. Faust's drain keeps a read offset per partition
    (messages below it are dropped without a word) and its acks count from its committed offset:
    ``_new_offset`` commits nothing while the lowest acked offset lies more than one past it, so
    one message never acknowledged there (withheld) stopped that partition's commits, and every
    later ack piled up in ``_acked[tp]`` (sorted at each commit) until the next rebalance:
    measured 5,408 entries and growing on one partition 10 s after a takeover
    (tests/integration/test_faust_takeover.py). Everything below the resume offset is counted
    (it is in Redis), so Faust may commit up to it and reads on from it."""
    if not offsets:
        return
    await consumer.seek_wait(offsets)
    for tp, offset in offsets.items():
        consumer._read_offset[tp] = offset or None
        consumer._committed_offset[tp] = offset or None
        consumer._acked.pop(tp, None)
        consumer._acked_index.pop(tp, None)
        consumer._gap.pop(tp, None)


async def counted_below(consumer: Any, resume: dict[Key, int]) -> None:
    """Everything below each owned partition's resume offset is counted (it is in Redis): when
    Faust's commits of one are stuck behind a message it never saw acknowledged (withheld, or a
    re-delivery its drain dropped), mark the offsets up to the resume offset as done through
    Faust's own gap bookkeeping, so it commits up to there and its acked list stays bounded."""
    for key, offset in list(resume.items()):
        tp = TP(*key)
        acked = consumer._acked.get(tp)
        committed = consumer._committed_offset.get(tp)
        if acked and committed is not None and committed + 1 < min(acked) and committed < offset:
            await consumer._add_gap(tp, committed, offset - 1)


def withhold(messages: Iterable[Any]) -> None:
    """Never acknowledge ``messages`` (not counted by this worker): Faust's ``Message.ack``
    does nothing for a message already marked acked, so no commit passes them."""
    for m in messages:
        m.acked = True
