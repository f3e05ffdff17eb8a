"""From raw Kafka records of one partition to one exactly-once apply, for either engine.

The :class:`Ingestor` owns, per assigned partition, the fencing generation and the last offset
applied for each shop (learnt from conflicts after a takeover). It decodes a batch, sends bad
messages to the dead-letter sink, pre-aggregates the rest and applies it atomically; a conflict
means another (stale) writer got further for some shops, so those messages are dropped and the
batch rebuilt. No Kafka client and no Redis client in here: both arrive as small interfaces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from schemas.dead_letter import DeadLetter, DeadLetterSink
from schemas.decoder import Decoder, TimeBounds
from stream.dates.clock import Clock
from stream.dates.days import DayResolver
from stream.ingest.aggregate import BatchBuilder, keyed_shops
from stream.ingest.losses import Losses
from stream.ingest.memos import DailyMemos
from stream.ingest.types import (
    OVERFLOW,
    BatchOutcome,
    PartitionFenced,
    PartitionRewound,
    PartitionState,
    RawRecord,
    Routes,
)
from stream.state.batch import PartitionBatch
from stream.state.shop_directory import ShopDirectory
from stream.state.store import ApplyResult, Claim, CounterStore
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class Ingestor:
    def __init__(
        self,
        *,
        routes: Routes,
        store: CounterStore,
        shops: ShopDirectory,
        dead_letters: DeadLetterSink,
        telemetry: Telemetry,
        clock: Clock,
        retention_days: int,
        days: DayResolver | None = None,
        decoder: Decoder | None = None,
        shop_cache_entries: int = 100_000,
        shop_offsets_per_partition: int = 20_000,
    ) -> None:
        self._store = store
        self._shops = shops
        self._dead_letters = dead_letters
        self._telemetry = telemetry
        self._clock = clock
        self._retention_days = retention_days
        self._days = days or DayResolver()
        self._decoder = decoder if decoder is not None else Decoder()
        self._folding = asyncio.Lock()  # one batch folds at a time (BatchBuilder.turn)
        self._routes = routes
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self._losses = Losses(telemetry)
        # Per-shop memos, each of at most ``shop_cache_entries`` (cleared when full: a miss costs
        # one idempotent write) and per partition at most ``shop_offsets_per_partition`` offsets.
        self.max_offsets = shop_offsets_per_partition
        self._memos = DailyMemos(shop_cache_entries)

    def cache_sizes(self) -> dict[str, Callable[[], float]]:
        """How many entries each per-shop cache holds now (upsell_cache_entries)."""
        return {
            **self._memos.sizes(),
            "shop_offsets": lambda: sum(len(p.shop_offsets) for p in self.partitions.values()),
            "decoder_shop_ids": self._decoder.__len__,
        }

    async def assign(self, topic: str, partition: int) -> int:
        """Claim the partition (a new fencing generation); returns the offset to resume from."""
        held = self.partitions.get((topic, partition))
        claim = await self._store.claim(topic, partition, held.generation if held else 0)
        self._memos.ttl_fresh.clear()  # Redis may have lost keys (this may follow an outage)
        if held is not None and claim.resume_offset - 1 < held.checkpoint:
            self._losses.rewound(topic, partition, held.checkpoint, claim.resume_offset)
        self._track(topic, partition, claim)
        return claim.resume_offset

    async def verify(self, topic: str, partition: int) -> int | None:
        """Compare Redis's checkpoint with the one this worker last wrote (an idle partition
        sends no apply that would notice): the offset to read again from if Redis went back in
        time, else None."""
        state = self.partitions.get((topic, partition))
        if state is None or state.lock.locked():
            return None
        async with state.lock:
            stored = await self._store.checkpoint(topic, partition)
            if stored >= state.checkpoint or self.partitions.get((topic, partition)) is not state:
                return None
            return await self._reclaim_rewound(topic, partition, state, {})

    async def _reclaim_rewound(
        self, topic: str, partition: int, state: PartitionState, shops: dict[str, int]
    ) -> int:
        """Redis lost writes of this partition: claim it again and read from what Redis holds,
        the checkpoint or, if lower, the progress of ``shops`` (one Cluster node lost writes)."""
        claim = await self._store.claim(topic, partition, state.generation)
        resume = min([claim.resume_offset, *(offset + 1 for offset in shops.values())])
        self._losses.rewound(topic, partition, state.checkpoint, resume, len(shops))
        self._memos.ttl_fresh.clear()
        self.partitions[(topic, partition)] = PartitionState(
            claim.generation,
            resume,
            claim.epoch,
            next_offset=resume,
            applied_at=state.applied_at,
            last_record_ms=state.last_record_ms,
            checkpoint=claim.resume_offset - 1,
        )
        return resume

    def resume_in_log(self, topic: str, partition: int, resume: int, log_start: int) -> int:
        """Where reading resumes after a rewind, given the log's first retained offset: records
        Kafka no longer has are reported lost (metric, log, /readyz), never skipped silently."""
        if resume >= log_start:
            return resume
        self.lost_to_retention(topic, partition, resume, log_start)
        return log_start

    def lost_to_retention(self, topic: str, partition: int, first: int, log_start: int) -> None:
        """Offsets ``first`` .. ``log_start - 1`` were to be read but Kafka no longer has them."""
        self._losses.lost_to_retention(topic, partition, first, log_start)

    @property
    def records_lost(self) -> dict[str, int]:
        """ "topic[p]" -> records Redis lost that Kafka no longer had to read again (/readyz)."""
        return self._losses.records_lost

    async def restart_log(self, topic: str, partition: int) -> int:
        """The partition's log restarted below our checkpoint (topic recreated, a broker lost its
        data): count the new log from offset 0 in a new epoch. Returns the offset to read."""
        state = self.partitions.get((topic, partition))
        if state is None:
            raise PartitionFenced(f"{topic}[{partition}] is not assigned to this worker")
        claim = await self._store.restart_log(topic, partition, state.generation)
        if claim.resume_offset < 0:
            self.revoke(topic, partition)
            raise PartitionFenced(f"{topic}[{partition}] was claimed by another worker")
        self._telemetry.log_restarts.labels(topic).inc()
        log.warning(
            "%s[%d]: the log restarted below checkpoint %d; counting it from offset 0 (epoch %d)",
            topic,
            partition,
            state.resume_offset - 1,
            claim.epoch,
        )
        self._track(topic, partition, claim)
        return 0

    def _track(self, topic: str, partition: int, claim: Claim) -> None:
        held = self.partitions.get((topic, partition))  # a claim again keeps the last record's time
        self.partitions[(topic, partition)] = PartitionState(
            claim.generation,
            claim.resume_offset,
            claim.epoch,
            next_offset=claim.resume_offset,
            applied_at=self._clock().timestamp(),
            last_record_ms=held.last_record_ms if held is not None else None,
            checkpoint=claim.resume_offset - 1,
        )

    def revoke(self, topic: str, partition: int) -> None:
        self.partitions.pop((topic, partition), None)
        self._telemetry.forget_partition(topic, partition)

    def note_last_record(self, topic: str, partition: int, timestamp_ms: int | None) -> None:
        """The engine applied a batch whose last record has this Kafka timestamp (ms), for the
        lag in seconds (LagWatch); ignored for a partition no longer owned, or without one."""
        state = self.partitions.get((topic, partition))
        if state is not None and timestamp_ms:
            state.last_record_ms = timestamp_ms

    async def process(
        self, topic: str, partition: int, records: Sequence[RawRecord]
    ) -> BatchOutcome:
        """Count ``records`` (one partition, in offset order; an offset repeated is counted once)
        exactly once. Raises PartitionFenced, PartitionRewound (nothing applied: read again from
        its offset), or StoreUnavailable (retriable: nothing was applied, or all of it was)."""
        state = self.partitions.get((topic, partition))
        if state is None:
            raise PartitionFenced(f"{topic}[{partition}] is not assigned to this worker")
        async with state.lock:
            now = self.partitions.get((topic, partition))
            if now is None:
                raise PartitionFenced(f"{topic}[{partition}] is not assigned to this worker")
            if now is not state:  # a rewind check claimed it again meanwhile
                raise PartitionRewound(topic, partition, now.resume_offset)
            return await self._process(state, topic, partition, records)

    async def _process(
        self, state: PartitionState, topic: str, partition: int, records: Sequence[RawRecord]
    ) -> BatchOutcome:
        kind, counter = self._routes[topic]
        now = self._clock()
        day = int(now.timestamp()) // 86_400
        self._memos.start(day)
        if day != state.day:  # offsets stay younger than the progress hashes' TTLs (see xo)
            state.shop_offsets.clear()
            state.day = day
        # The time zones of the batch's shops, read before counting (records are keyed by shop);
        # a keyless record's shop not among them is read after the first pass, which then runs
        # again.
        builder = BatchBuilder(
            topic,
            partition,
            records,
            state,
            kind,
            counter,
            TimeBounds.at(now, self._retention_days),  # one pair of bounds for the batch
            await self._shops.timezones(keyed_shops(records)),
            self._retention_days,
            self._memos.ttl_fresh,
            self._decoder,
            self._days,
            self._folding,
        )
        letters: list[DeadLetter] = []
        unknown: set[str] = set()
        batch, skipped = await builder.build(letters, unknown=unknown)
        if unknown:
            builder.zones.update(await self._shops.timezones(unknown))
            batch, skipped = await builder.build()
        if letters:
            await self._dead_letters.send(letters)
        batch, skipped, result = await self._apply(builder, batch, skipped, letters)
        state.learn(
            {shop: section.last_offset for shop, section in batch.sections.items()},
            self.max_offsets,
        )
        state.checkpoint = max(state.checkpoint, batch.last_offset)
        state.next_offset = records[-1].offset + 1
        state.applied_at = self._clock().timestamp()
        await self._mark_seen(batch)
        self._memos.refreshed(batch.ttl_refreshed)
        money = result.money_counted + result.money_duplicates
        counted = batch.events - money + result.money_counted
        return BatchOutcome(counted, result.money_duplicates, len(letters), skipped, result)

    async def _apply(
        self, builder: BatchBuilder, batch: PartitionBatch, skipped: int, letters: list[DeadLetter]
    ) -> tuple[PartitionBatch, int, ApplyResult]:
        """Apply ``batch``, building it again while Redis answers a progress conflict or a total
        that would overflow (those events are dead-lettered and added to ``letters``)."""
        topic, partition, state = builder.topic, builder.partition, builder.state
        refused: set[str] = set()
        while True:
            result = await self._store.apply(batch)
            if result.status == "ok":
                return batch, skipped, result
            if result.status == "fenced":
                if self.partitions.get((topic, partition)) is state:  # not re-claimed meanwhile
                    self.revoke(topic, partition)
                raise PartitionFenced(f"{topic}[{partition}] generation {state.generation} fenced")
            if result.status == "rewound":
                resume = await self._reclaim_rewound(topic, partition, state, result.rewound)
                raise PartitionRewound(topic, partition, resume)
            if result.status == "overflow":
                refused.update(result.overflow)
                rebuilt: list[DeadLetter] = []
                batch, skipped = await builder.build(rebuilt, refused)
                overflow = [x for x in rebuilt if x.reason == OVERFLOW]
                log.error(
                    "%s[%d]: %d events would overflow a total", topic, partition, len(overflow)
                )
                await self._dead_letters.send(overflow)
                letters.extend(overflow)
                continue
            log.info(
                "%s[%d]: progress conflict for %d shops, rebuilding",
                topic,
                partition,
                len(result.conflicts),
            )
            state.learn(result.conflicts, self.max_offsets)
            # rebuilt from the records (rare): their dead letters were sent already
            batch, skipped = await builder.build(refused=refused)

    async def dead_letter_range(
        self, topic: str, partition: int, first: int, last: int, detail: str
    ) -> None:
        """Offsets ``first``..``last`` cannot be read at all: one dead letter names the range."""
        letter = DeadLetter(
            topic, partition, first, None, None, "unreadable_batch", detail, last_offset=last
        )
        await self._dead_letters.send([letter])

    async def _mark_seen(self, batch: PartitionBatch) -> None:
        """List the batch's shops in us:shops:seen once a day each (a bounded memo)."""
        new_shops = self._memos.unseen(batch.sections)
        if new_shops:
            await self._store.mark_shops_seen(new_shops, self._memos.day)
            self._memos.saw(new_shops)
