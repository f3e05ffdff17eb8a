"""Unreadable batches under the Faust engine (docs/state.md, "Unreadable batches").

Faust's consumer raises aiokafka's error for a batch no client can read out of its fetch loop,
and the worker exits; a restarted worker meets the same batch again, a crash loop. So the
engine wraps the consumer's ``_getmany`` (the one call through which Faust fetches): on such an
error it locates the batch in each owned partition from the engine's own next offset (a raw
fetch, ``unreadable_batches.locate``), dead-letters its offset range, counts it in
``upsell_unreadable_batches_total`` and moves the position past it. The readable records before
it are returned as that fetch's result, so Faust delivers them to the agents as usual (its
drain drops those it had delivered already); none is lost with the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from stream.engines import unreadable_batches
from stream.ingest.ingestor import Ingestor
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

_NOT_THE_BATCH = (KafkaError, ConsumerStoppedError, ConsumerNotStarted)


class FaustUnreadable:
    def __init__(
        self,
        *,
        ingestor: Ingestor,
        telemetry: Telemetry,
        positions: Callable[[], Mapping[tuple[str, int], int]],
    ) -> None:
        self.ingestor = ingestor
        self.telemetry = telemetry
        self.positions = positions  # the next offset to count, per owned counted partition
        self._wrapped = False
        self._past: dict[tuple[str, int], int] = {}  # the offset after the last skipped batch

    def install(self, consumer: Any) -> None:
        """Wrap Faust's ``consumer._getmany`` once (the consumer lives as long as the app)."""
        if self._wrapped:
            return
        original = consumer._getmany

        # Faust passes ``timeout`` by keyword, so the name stays
        async def getmany(active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
            try:
                return await original(active_partitions, timeout)
            except unreadable_batches.UNREADABLE as exc:
                return await self.skip(consumer, exc)
            except _NOT_THE_BATCH:
                raise
            except Exception as exc:  # a decompressor's own error (zlib.error, ...) on a batch
                return await self.skip(consumer, exc)

        consumer._getmany = getmany
        self._wrapped = True

    async def skip(self, consumer: Any, exc: Exception) -> dict[TP, list[Any]]:
        """Find the batch from the engine's positions, dead-letter it, read on after it; the
        records before it are this fetch's result."""
        thread: Any = consumer._thread
        aio = thread._ensure_consumer()
        out: dict[TP, list[Any]] = {}
        found = False
        for key, resume in sorted(self.positions().items()):
            # Records before a skipped batch were returned; those not counted yet are on their
            # way to the agent, so the search starts after that batch
            start = max(resume, self._past.get(key, 0))
            tp = TP(*key)
            call = unreadable_batches.skip_past
            try:
                skipped = await thread.call_thread(call, aio, TopicPartition(*key), start)
            except (KafkaError, OSError) as err:
                log.warning("%s[%d]: cannot look for an unreadable batch (%s)", *key, err)
                continue
            if skipped is None:
                continue
            found = True
            first, last, before = skipped
            self._past[key] = last + 1
            if before:
                out[tp] = before
            await unreadable_batches.dead_letter(
                self.ingestor, self.telemetry, tp, (first, last), exc
            )
        if not found:
            await unreadable_batches.nothing_found(exc)
        return out
