"""``UPSELL_ENGINE=faust``: the counted topics through Faust agents, into the same Ingestor.

Each agent takes ``take_events`` batches, splits them by partition and hands each partition's
messages to :meth:`Ingestor.process` (one atomic apply per batch and partition).

Exactly once with Faust: on assignment each new partition is claimed in Redis (a fencing
generation and the stored checkpoint); Faust's own position is then moved to checkpoint + 1 by
wrapping ``consumer.perform_seek`` (Faust's recovery seeks to Kafka's committed offsets, then
resumes fetching; the wrapper holds it until the claims are done, claims.py), no message
this worker does not count is acknowledged, and every message below the resume offset is dropped
before counting. A batch keeps one message per offset: after a seek Faust delivers the last
message it had delivered once more, possibly into the same batch (docs/state.md). So a
re-delivery is never applied twice. Kafka's committed offsets are Faust's business only.

Redis that went back in time is repaired beside Faust, and records lost to retention are counted
(repair.py); unreadable batches are dead-lettered and skipped (unreadable.py).

A log that restarted below the checkpoint (a broker that kept no data, a recreated topic) shows
as a high watermark below the resume offset: once that lasts ``LogEndWatch.grace_s``, the
partition is counted from offset 0 in a new epoch, as the batch engine does (docs/state.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import faust
from faust.types import TP

from stream.engines.faust.claims import Generations, SeekGate, counted_below, position, withhold
from stream.engines.faust.repair import Rereader
from stream.engines.faust.unreadable import FaustUnreadable
from stream.engines.log_end_watch import LogEndWatch
from stream.ingest.ingestor import Ingestor
from stream.ingest.types import PartitionFenced, PartitionRewound
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class FaustCounting:
    def __init__(
        self,
        app: faust.App,
        *,
        settings: Settings,
        ingestor: Ingestor,
        telemetry: Telemetry,
        health: StoreHealth,
        ready_to_count: asyncio.Event,
    ) -> None:
        self.app = app
        self.settings = settings
        self.ingestor = ingestor
        self.telemetry = telemetry
        self.health = health
        self.ready_to_count = ready_to_count
        self.counted = set(settings.topics.counted)
        self.resume: dict[tuple[str, int], int] = {}  # next offset to count, per owned partition
        # Held while a partition's batch is counted or its lost range read again
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self.joined = False
        self.log_ends = LogEndWatch()
        self.rereader = Rereader(settings=settings, ingestor=ingestor, health=health)
        self.unreadable = FaustUnreadable(
            ingestor=ingestor, telemetry=telemetry, positions=lambda: self.resume
        )
        self.gate = SeekGate()
        self.generations = Generations()

    def install(self) -> None:
        """Before Faust's first rebalance: its seeks to committed offsets wait for our claims."""
        consumer: Any = self.app.consumer
        self.gate.install(consumer, partial(self._seek_resume, consumer))

    # -- rebalance -------------------------------------------------------------------------
    async def on_assigned(self, _sender: Any, assigned: set[TP], **_kw: Any) -> None:
        self.gate.claiming()
        generation = self.app.consumer_generation_id
        hot = {(tp.topic, tp.partition) for tp in assigned if tp.topic in self.counted}
        for key in [k for k in self.resume if k not in hot]:
            self._drop(key)
            self.ingestor.revoke(*key)
        for topic, part in sorted(hot - set(self.resume)):
            offset = await self.health.retry(partial(self.ingestor.assign, topic, part), "claim")
            self._resume_at((topic, part), offset)
        for key in hot:
            self.generations.claimed(key, generation)
        self.install()
        self.unreadable.install(self.app.consumer)
        await self._seek_resume(self.app.consumer)
        self.gate.claimed()
        self.joined = True
        for topic in self.settings.topics.counted:
            n = sum(1 for t, _p in self.resume if t == topic)
            self.telemetry.assigned_partitions.labels(topic).set(n)
        log.info("faust engine owns %d counted partitions", len(self.resume))

    async def on_revoked(self, _sender: Any, revoked: set[TP], **_kw: Any) -> None:
        self.gate.claiming()
        for tp in revoked:
            if self._drop((tp.topic, tp.partition)):
                self.ingestor.revoke(tp.topic, tp.partition)

    def _resume_at(self, key: tuple[str, int], offset: int) -> None:
        self.resume[key] = offset
        self._locks.setdefault(key, asyncio.Lock())
        self.log_ends.positioned(key, offset)

    def _leave(self, key: tuple[str, int], exc: PartitionFenced) -> None:
        log.warning("%s; leaving it to its new owner", exc)
        self._drop(key)

    def _drop(self, key: tuple[str, int]) -> bool:
        self.log_ends.forget(key)
        self.generations.forget(key)
        return self.resume.pop(key, None) is not None

    def highwater(self, topic: str, partition: int) -> int | None:
        """The high watermark Faust's consumer last saw for a partition (None before one)."""
        try:
            high = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # no consumer yet, or a partition it does not fetch
            return None
        return int(high) if high is not None else None

    # -- Redis that went back in time ----------------------------------------------------
    async def _repair(self, key: tuple[str, int], first: int) -> bool:
        """Redis holds the partition only below ``first``: read the rest up to the resume offset
        again beside Faust (repair.py). False when the partition has a new owner."""
        end = self.resume.get(key)
        if end is None:
            return False
        try:
            await self.rereader.repair(key, first, end)
        except PartitionFenced as exc:
            self._leave(key, exc)
            return False
        return True

    async def check_rewinds(self) -> None:
        """Called every second: an idle partition sends no apply that would notice that Redis
        went back behind what this worker wrote, so compare the checkpoints."""
        for key in list(self.resume):
            lock = self._locks.get(key)
            if lock is None or lock.locked():
                continue  # being counted: its apply notices by itself
            async with lock:
                try:
                    offset = await self.ingestor.verify(*key)
                except StoreUnavailable as exc:
                    log.debug("rewind check skipped: %s", exc)
                    return
                if offset is not None:
                    await self._repair(key, offset)

    # -- a log that restarted below the checkpoint ---------------------------------------
    async def check_log_ends(self) -> None:
        """Called every second: a partition whose high watermark stays below its resume offset
        restarted its log; count it from offset 0 in a new epoch."""
        consumer: Any = self.app.consumer
        for key in list(self.resume):
            if self.log_ends.high_watermark(key, consumer.highwater(TP(*key))):
                await self._restart_log(key)

    async def check_commits(self) -> None:
        """Called every second: Faust may commit what the engine counted (claims.py)."""
        await counted_below(self.app.consumer, self.resume)

    async def _restart_log(self, key: tuple[str, int]) -> None:
        topic, part = key
        try:
            offset = await self.health.retry(
                partial(self.ingestor.restart_log, topic, part), "claim"
            )
        except PartitionFenced as exc:
            self._leave(key, exc)
            return
        if key in self.resume:
            self._resume_at(key, offset)
            await position(self.app.consumer, {TP(topic, part): offset})

    async def _seek_resume(self, consumer: Any) -> None:
        """Seek every owned partition to its resume offset, on the consumer's own thread:
        ``Consumer.seek`` would touch aiokafka's fetcher from this thread while the consumer
        thread drains it (seen as ``KeyError`` in ``Fetcher.fetched_records``)."""
        offsets = {TP(topic, part): offset for (topic, part), offset in self.resume.items()}
        await position(consumer, offsets)

    # -- counting --------------------------------------------------------------------------
    def agent(self) -> Callable[[Any], Any]:
        async def count(stream: Any) -> None:
            await self.ready_to_count.wait()
            linger = max(self.settings.batch_linger_ms, 1) / 1000
            async for events in stream.take_events(self.settings.batch_max_events, within=linger):
                by_partition: dict[tuple[str, int], list[Any]] = {}
                for event in events:
                    msg = event.message
                    by_partition.setdefault((msg.topic, msg.partition), []).append(msg)
                for key, messages in by_partition.items():
                    await self._count(key, messages)

        return count

    async def _count(self, key: tuple[str, int], messages: list[Any]) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):
            start = self.resume.get(key)
            if start is None:
                withhold(messages)  # not (or no longer) ours: never acknowledged, never committed
                return
            messages = self.generations.current(key, messages)
            # One message per offset: after a seek Faust re-delivers the last message it
            # delivered, possibly into the same batch (docs/state.md, "Exactly once").
            unique = {m.offset: m for m in messages if m.offset >= start}
            fresh = [unique[offset] for offset in sorted(unique)]
            if not fresh:
                return
            if fresh[0].offset > start:
                await self.rereader.lost_before(self.app.consumer, key, start, fresh[0].offset)
            await self._apply(key, fresh)

    async def _apply(self, key: tuple[str, int], fresh: list[Any]) -> None:
        topic, part = key
        while True:
            started = time.perf_counter()
            try:
                outcome = await self.ingestor.process(topic, part, fresh)
                break
            except PartitionFenced as exc:
                withhold(fresh)
                if key in self.ingestor.partitions:  # claimed again by this worker meanwhile
                    log.info("%s; this worker claimed it again meanwhile", exc)
                    return
                self._leave(key, exc)
                return
            except PartitionRewound as exc:
                resume = exc.resume_offset
            except StoreUnavailable as exc:
                self.health.failed("apply", exc)
                try:
                    resume = await self.health.retry(partial(self.ingestor.assign, topic, part))
                except PartitionFenced as fenced:
                    self._leave(key, fenced)
                    return
            # Redis lost writes below this batch: count them again, then this batch
            if resume < self.resume.get(key, resume) and not await self._repair(key, resume):
                return
        if key in self.resume:
            self._resume_at(key, fresh[-1].offset + 1)
        last_ms = _ms(fresh[-1].timestamp)
        self.telemetry.observe_batch(
            topic,
            outcome,
            time.perf_counter() - started,
            [_ms(fresh[0].timestamp), last_ms],
            len(fresh),
        )
        self.ingestor.note_last_record(topic, part, last_ms)


def _ms(seconds: float | None) -> int | None:
    """Faust's message timestamps are seconds."""
    return None if not seconds else int(seconds * 1000)
