"""From raw Kafka records of one partition to one exactly-once apply, for either engine.

The :class:`Ingestor` owns, per assigned partition, the fencing generation and the last offset
applied for each shop (learnt from conflicts after a takeover). It decodes a batch, sends bad
messages to the dead-letter sink, pre-aggregates the rest and applies it atomically; a conflict
means another (stale) writer got further for some shops, so those messages are dropped and the
batch rebuilt. No Kafka client and no Redis client in here: both arrive as small interfaces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from consumers import clicks, downgrades, upgrades, views
from schemas.decoder import Decoder, TimeBounds
from schemas.models import Kind, Rejected
from stream.clock import Clock
from stream.days import DayResolver
from stream.settings import Topics
from stream.shop_directory import ShopDirectory
from stream.state.batch import PartitionBatch, ShopSection
from stream.state.store import ApplyResult, Claim, CounterStore
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

Counter = Callable[[ShopSection, Any, str], None]


class RawRecord(Protocol):
    """What both aiokafka's ConsumerRecord and Faust's Message offer."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    last_offset: int | None = None  # a range of offsets at once (an unreadable batch)


class DeadLetterSink(Protocol):
    async def send(self, letters: Sequence[DeadLetter]) -> None: ...


class PartitionFenced(Exception):
    """Another worker owns this partition now; this one must stop writing for it."""

    retriable = False


@dataclass(slots=True)
class PartitionState:
    generation: int
    resume_offset: int
    epoch: int = 0
    shop_offsets: dict[str, int] = field(default_factory=dict)
    # Progress, for the lag: the next offset to apply and when the last apply succeeded (or the
    # claim, before any), in epoch seconds.
    next_offset: int = 0
    applied_at: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    counted: int
    duplicates: int
    dead_letters: int
    skipped: int
    result: ApplyResult


class Ingestor:
    def __init__(
        self,
        *,
        topics: Topics,
        store: CounterStore,
        shops: ShopDirectory,
        dead_letters: DeadLetterSink,
        telemetry: Telemetry,
        clock: Clock,
        retention_days: int,
        days: DayResolver | None = None,
        decoder: Decoder | None = None,
    ) -> None:
        self._store = store
        self._shops = shops
        self._dead_letters = dead_letters
        self._telemetry = telemetry
        self._clock = clock
        self._retention_days = retention_days
        self._days = days or DayResolver()
        self._decoder = decoder or Decoder()
        self._routes: dict[str, tuple[Kind, Counter]] = {
            topics.views: (views.KIND, views.count),
            topics.clicks: (clicks.KIND, clicks.count),
            topics.upgrades: (upgrades.KIND, upgrades.count),
            topics.downgrades: (downgrades.KIND, downgrades.count),
        }
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self._seen_shops: set[str] = set()  # shops already listed in Redis (for /v1/shops)
        # Shops whose progress TTL this worker refreshed today: later batches leave it out.
        self._ttl_fresh: set[str] = set()
        self._ttl_day = 0

    async def assign(self, topic: str, partition: int) -> int:
        """Claim the partition (a new fencing generation); returns the offset to resume from."""
        claim = await self._store.claim(topic, partition)
        self._ttl_fresh.clear()  # Redis may have lost keys (this may follow an outage)
        self._track(topic, partition, claim)
        return claim.resume_offset

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
        self.partitions[(topic, partition)] = PartitionState(
            claim.generation,
            claim.resume_offset,
            claim.epoch,
            next_offset=claim.resume_offset,
            applied_at=self._clock().timestamp(),
        )

    def revoke(self, topic: str, partition: int) -> None:
        self.partitions.pop((topic, partition), None)
        self._telemetry.forget_partition(topic, partition)

    async def process(
        self, topic: str, partition: int, records: Sequence[RawRecord]
    ) -> BatchOutcome:
        """Count ``records`` (one partition, in offset order; an offset repeated is counted once)
        exactly once. Raises PartitionFenced, or StoreUnavailable (retriable: nothing was
        applied, or all of it was)."""
        state = self.partitions.get((topic, partition))
        if state is None:
            raise PartitionFenced(f"{topic}[{partition}] is not assigned to this worker")
        kind, counter = self._routes[topic]
        now = self._clock()
        bounds = TimeBounds.at(now, self._retention_days)  # one pair of bounds for the batch
        day = int(now.timestamp()) // 86_400
        if day != self._ttl_day:  # the progress hashes' TTLs are refreshed once a day
            self._ttl_fresh.clear()
            self._ttl_day = day
        letters: list[DeadLetter] = []
        # One pass decodes and aggregates: a batch keeps its aggregate, never its decoded events.
        batch, skipped = self._build(
            state, topic, partition, records, kind, counter, bounds, letters
        )
        if letters:
            await self._dead_letters.send(letters)
        while True:
            result = await self._store.apply(batch)
            if result.status == "ok":
                break
            if result.status == "fenced":
                if self.partitions.get((topic, partition)) is state:  # not re-claimed meanwhile
                    self.revoke(topic, partition)
                raise PartitionFenced(f"{topic}[{partition}] generation {state.generation} fenced")
            log.info(
                "%s[%d]: progress conflict for %d shops, rebuilding",
                topic,
                partition,
                len(result.conflicts),
            )
            state.shop_offsets.update(result.conflicts)
            # rebuilt from the records (rare): their dead letters were sent already
            batch, skipped = self._build(state, topic, partition, records, kind, counter, bounds)
        state.next_offset = records[-1].offset + 1
        state.applied_at = self._clock().timestamp()
        for shop, section in batch.sections.items():
            state.shop_offsets[shop] = section.last_offset
        new_shops = [shop for shop in batch.sections if shop not in self._seen_shops]
        if new_shops:
            await self._store.mark_shops_seen(new_shops)
            self._seen_shops.update(new_shops)
        self._ttl_fresh.update(batch.ttl_refreshed)
        money = result.money_counted + result.money_duplicates
        counted = batch.events - money + result.money_counted
        return BatchOutcome(counted, result.money_duplicates, len(letters), skipped, result)

    async def dead_letter_range(
        self, topic: str, partition: int, first: int, last: int, detail: str
    ) -> None:
        """Offsets ``first``..``last`` cannot be read at all: one dead letter names the range."""
        letter = DeadLetter(
            topic, partition, first, None, None, "unreadable_batch", detail, last_offset=last
        )
        await self._dead_letters.send([letter])

    def _build(
        self,
        state: PartitionState,
        topic: str,
        partition: int,
        records: Sequence[RawRecord],
        kind: Kind,
        counter: Counter,
        bounds: TimeBounds,
        letters: list[DeadLetter] | None = None,
    ) -> tuple[PartitionBatch, int]:
        """Decode and pre-aggregate ``records``; rejected ones go to ``letters`` (if given)."""
        batch = PartitionBatch(
            topic,
            partition,
            state.generation,
            records[-1].offset,
            self._retention_days,
            epoch=state.epoch,
            ttl_fresh=self._ttl_fresh,
        )
        done = state.shop_offsets
        timezone = self._shops.timezone
        day_of = self._days.day_of_epoch
        decode = self._decoder.decode
        sections = batch.sections
        skipped = 0
        previous = -1
        for r in records:
            offset = r.offset
            if offset <= previous:
                # The same record delivered twice in one batch (Faust re-delivers its last
                # record after a seek): count the first copy only. Redis could not tell, since
                # the apply checks a shop's first offset in the batch (docs/state.md).
                skipped += 1
                continue
            previous = offset
            event: Any = decode(kind, r.key, r.value, bounds)
            if isinstance(event, Rejected):
                if letters is not None:
                    letters.append(
                        DeadLetter(
                            topic, partition, r.offset, r.key, r.value, event.reason, event.detail
                        )
                    )
                continue
            shop = event.shop_id
            if offset <= done.get(shop, -1):
                skipped += 1
                continue
            section = sections.get(shop)
            if section is None:
                section = batch.section(shop, offset)
            occurred = event.occurred_at
            epoch = occurred.timestamp()
            counter(section, event, day_of(timezone(shop), epoch, occurred))
            section.saw(offset, int(epoch * 1000))
        return batch, skipped
