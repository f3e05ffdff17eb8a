"""Sends the changes marked dirty in Redis to the compacted changelog topic (docs/state.md,
"Changelog").

A flush: read the global items (partition checkpoints, settings, write keys) first, then every
dirty shop, chunk by chunk, each chunk's marks and values in one script call; send each shop's
records in one record batch (the broker appends a batch whole, so a shop's records of one flush
land together or not at all); once every shop batch is acknowledged, send the global records
and the flush marker last; once those are acknowledged, clear the marks that did not change
since. Checkpoints are read before the shops and sent after them, so the changelog never holds
a checkpoint ahead of a shop's state: a restore resumes at or before what every shop holds, and
the per-shop progress skips what a shop already counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from stream.changelog_metrics import ChangelogMetrics
from stream.kafka.clients import make_producer
from stream.settings import Settings
from stream.state.changelog import (
    GLOBAL,
    MARKER_KEY,
    ChangelogState,
    DirtyShop,
    partition_of,
)
from stream.state.changelog_seed import ChangelogSeed
from stream.state.redis import RETRIABLE
from stream.state.store import StoreUnavailable

log = logging.getLogger(__name__)

LEASE_MS = 15_000
BATCH_BYTES = 900_000  # one record batch (under the broker's default max.message.bytes, 1 MiB)


def changelog_producer(s: Settings) -> AIOKafkaProducer:
    return make_producer(
        s.kafka_bootstrap,
        acks="all",
        enable_idempotence=s.changelog_idempotent,
        max_batch_size=BATCH_BYTES + 100_000,
        max_request_size=4 * 1024 * 1024,
        linger_ms=0,
    )


class ChangelogFlusher(Service):
    def __init__(
        self,
        *,
        settings: Settings,
        state: ChangelogState,
        metrics: ChangelogMetrics,
        ready: asyncio.Event,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.topic = settings.topics.changelog
        self.dirty = state
        self.seed = ChangelogSeed(state.client)
        self._seeding = False
        self.metrics = metrics
        self.ready = ready
        self._factory = producer_factory or (lambda: changelog_producer(settings))
        self.producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._clean_since = time.monotonic()  # start of the last flush that left nothing
        # Redis lost its state under this worker (no marker): the restore (changelog_wiring.py)
        self.on_lost: Callable[[], Awaitable[object]] | None = None

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def _run(self) -> None:
        await self.ready.wait()
        self.producer = self._factory()
        await self.producer.start()
        while not self.should_stop and self.producer is not None:
            await asyncio.sleep(self.settings.changelog_flush_ms / 1000)
            await self.flush()

    async def on_stop(self) -> None:
        """A last flush, so a worker stopped on purpose leaves no change only in Redis."""
        if self.producer is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout=10)
        except TimeoutError:
            log.warning("changelog: the last flush did not finish in 10 s; Redis keeps the marks")
        await self.producer.stop()
        self.producer = None

    async def flush(self) -> int:
        """One flush if this worker holds the lease; returns the records acknowledged."""
        async with self._lock:
            if self.producer is None:  # stopped
                return 0
            started = time.monotonic()
            try:
                if not await self.dirty.lease(self.settings.worker_id, LEASE_MS):
                    return 0
                marker = await self.dirty.marker()
                if marker is None:
                    await self._marker_missing()
                    return 0
                sent = await self._flush(marker, closing=not await self._seed())
                self._clean_since = started
                self.metrics.lag_records.set(await self.dirty.pending())
            except (KafkaError, StoreUnavailable, *RETRIABLE) as exc:
                self.metrics.flush_failures.inc()
                log.warning("changelog flush failed (%s); the marks stay, retrying", exc)
                sent = 0
            self.metrics.lag_seconds.set(time.monotonic() - self._clean_since)
            return sent

    async def _marker_missing(self) -> None:
        """Redis lost its state under this running worker (emptied, replaced by an empty one):
        never flush it (its emptiness would overwrite the changelog); restore it instead."""
        log.error(
            "changelog: Redis holds no changelog marker (emptied or replaced under the running "
            "worker); not flushing, restoring it from the changelog (docs/operations.md, "
            "'Redis lost')"
        )
        if self.on_lost is not None:
            await self.on_lost()

    async def _seed(self) -> bool:
        """A step of the walk that marks the state of before the changelog (changelog_seed.py);
        True while it goes on."""
        seeding = await self.seed.run()
        if seeding and not self._seeding:
            log.warning(
                "changelog: seeding the state Redis held before it; no flush marker until done"
            )
        self._seeding = seeding
        if not seeding and self.seed.marked:
            log.warning("changelog: seeding done, %d items marked", self.seed.marked)
            self.seed.marked = 0
        return seeding

    async def _flush(self, marker: int, closing: bool = True) -> int:
        """Send the marked changes; with ``closing`` (not while seeding) the global records
        and the flush marker too."""
        assert self.producer is not None
        producer = self.producer
        # the global items before the shops: see the module's docstring
        glob = await self.dirty.read_global() if closing else DirtyShop(GLOBAL, b"")
        parts = len(await producer.partitions_for(self.topic))
        done: list[DirtyShop] = []
        acks: list[asyncio.Future[Any]] = []
        records = 0
        async for chunk in self.dirty.dirty_shops():
            _, dirty = await self.dirty.read(chunk)
            acks += await self._send_shops(dirty, parts)
            done += dirty
            records += sum(len(d.items) for d in dirty)
        await asyncio.gather(*acks)
        if closing and (records or glob.items):
            at = await self.dirty.next_marker(marker, self.settings.worker_id)
            if at is None:  # what was sent is a state of before, harmless; the marks stay
                log.warning("changelog: Redis changed under the flush (emptied or restored)")
                return records
            await asyncio.gather(*await self._send(0, [glob], at))
            records += len(glob.items) + 1
        self.metrics.records.inc(records)
        for i in range(0, len(done), 500):
            await self.dirty.clear(done[i : i + 500])
        if closing:
            await self.dirty.clear([glob])
        return records

    async def _send_shops(self, dirty: list[DirtyShop], parts: int) -> list[asyncio.Future[Any]]:
        by_part: dict[int, list[DirtyShop]] = {}
        for d in dirty:
            by_part.setdefault(partition_of(d.shop, parts), []).append(d)
        acks = []
        for part, shops in by_part.items():
            acks += await self._send(part, shops, None)
        return acks

    async def _send(
        self, part: int, shops: list[DirtyShop], marker: int | None
    ) -> list[asyncio.Future[Any]]:
        """Record batches of ``shops`` on ``part`` (a shop never split while it fits one batch),
        with the flush marker last when given."""
        assert self.producer is not None
        producer = self.producer
        acks: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        size = 0
        for d in shops:
            need = sum(len(i.item) + len(i.value or b"") + 32 for i in d.items)
            if size and size + need > BATCH_BYTES:
                acks.append(await producer.send_batch(batch, self.topic, partition=part))
                batch, size = producer.create_batch(), 0
            if need > BATCH_BYTES:
                log.warning("changelog: shop %r's flush spans several record batches", d.shop)
            for it in d.items:
                while batch.append(key=it.item, value=it.value, timestamp=None) is None:
                    acks.append(await producer.send_batch(batch, self.topic, partition=part))
                    batch, size = producer.create_batch(), 0
            self.metrics.bytes.inc(need - 32 * len(d.items))  # keys and values, no overhead
            size += need
        if marker is not None:
            value = orjson.dumps({"at": marker})
            if batch.append(key=MARKER_KEY, value=value, timestamp=None) is None:
                acks.append(await producer.send_batch(batch, self.topic, partition=part))
                batch = producer.create_batch()
                batch.append(key=MARKER_KEY, value=value, timestamp=None)
        if batch.record_count():
            acks.append(await producer.send_batch(batch, self.topic, partition=part))
        return acks


__all__ = ["GLOBAL", "ChangelogFlusher", "changelog_producer"]
