"""The default engine for the high-volume topics: aiokafka ``getmany`` batches into the Ingestor.

A :class:`mode.Service`, so the Faust app starts and stops it with the worker. Kafka's committed
offsets are written for lag visibility only: on assignment each partition resumes from the
checkpoint stored in Redis, whatever Kafka says. Where each partition reads next, and every
seek away from the next fetch, is :class:`stream.engines.batch.positions.Positions`; the commits for
lag visibility are :class:`stream.engines.batch.offset_commits.OffsetCommits`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from mode import Service

from stream.engines import unreadable_batches
from stream.engines.batch.offset_commits import OffsetCommits
from stream.engines.batch.pipeline import Aborted, ApplyPipeline, Settled, Span
from stream.engines.batch.positions import Positions
from stream.ingest.ingestor import Ingestor
from stream.ingest.types import BatchOutcome, PartitionFenced, PartitionRewound
from stream.kafka.clients import make_consumer
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.engine.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.engine.assigned(list(assigned))


class BatchEngine(Service):
    """Consumes the counted topics in large batches; one atomic apply per partition batch."""

    def __init__(
        self,
        *,
        settings: Settings,
        ingestor: Ingestor,
        telemetry: Telemetry,
        health: StoreHealth,
        ready_to_count: asyncio.Event,
        consumer_factory: Callable[[], AIOKafkaConsumer] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.ingestor = ingestor
        self.telemetry = telemetry
        self.health = health
        self.ready_to_count = ready_to_count
        self._consumer_factory = consumer_factory or partial(counting_consumer, settings)
        self.positions = Positions(ingestor=ingestor, telemetry=telemetry, health=health)
        self.pipeline = ApplyPipeline(ingestor)
        self.commits = OffsetCommits(lambda: self.positions.consumer, self.add_future)
        self._rewound: dict[TopicPartition, int] = {}  # read again from, after this round
        self.joined = False  # the group gave this worker its (possibly empty) share once

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        return self.positions.consumer

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def on_stop(self) -> None:
        try:
            await asyncio.wait_for(self.pipeline.settle(keep=0), timeout=10)
        except (TimeoutError, Exception) as exc:  # stopping anyway: applies are atomic
            log.debug("in-flight applies at stop: %s", exc)
            self.pipeline.cancel()
        if self.positions.consumer is not None:
            await self.positions.consumer.stop()
            self.positions.consumer = None

    def highwater(self, topic: str, partition: int) -> int | None:
        """The last fetch response's high watermark of the partition (None before one)."""
        if self.consumer is None:
            return None
        high: int | None = self.consumer.highwater(TopicPartition(topic, partition))
        return high

    # -- rebalance -----------------------------------------------------------------------------
    async def assigned(self, tps: list[TopicPartition]) -> None:
        await self.positions.assigned(tps)
        self.joined = True
        self._publish_assignment()
        log.info("assigned %d partitions: %s", len(tps), _fmt(tps))

    async def revoked(self, tps: list[TopicPartition]) -> None:
        await self.pipeline.wait_for(tps)  # no apply of ours runs once the group moves them
        self.positions.revoked(tps)
        self._publish_assignment()
        if tps:
            log.info("revoked %d partitions: %s", len(tps), _fmt(tps))

    def _publish_assignment(self) -> None:
        assignment = self.positions.assignment
        for topic in self.settings.topics.counted:
            n = sum(1 for tp in assignment if tp.topic == topic)
            self.telemetry.assigned_partitions.labels(topic).set(n)

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        await self.ready_to_count.wait()
        consumer = self.positions.consumer = self._consumer_factory()
        consumer.subscribe(list(self.settings.topics.counted), listener=_Rebalance(self))
        await consumer.start()
        log.info("batch engine consuming %s", ", ".join(self.settings.topics.counted))
        while not self.should_stop:
            try:
                got = await consumer.getmany(
                    timeout_ms=self.settings.batch_linger_ms or 1,
                    max_records=self.settings.batch_max_events,
                )
            except OffsetOutOfRangeError as exc:
                await self.positions.out_of_range(exc.args[0] if exc.args else {})
                continue
            except NoOffsetForPartitionError as exc:
                await self.positions.reclaim(
                    [tp for tp in exc.args if isinstance(tp, TopicPartition)]
                )
                continue
            except unreadable_batches.UNREADABLE as exc:
                await self._skip_unreadable(exc)
                continue
            except KafkaError as exc:
                log.warning("kafka fetch failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            except Exception as exc:  # a decompressor's own error (zlib.error, ...) on a batch
                await self._skip_unreadable(exc)
                continue
            if got:
                await self._process(got)
            elif self.pipeline.outstanding:
                await self._settle(keep=0)
            else:
                self.commits.maybe_commit()
                await self.positions.check_rewinds()
            await self.positions.check_log_ends()

    async def _skip_unreadable(self, exc: Exception) -> None:
        """A fetched batch cannot be read (stream/engines/unreadable_batches.py): find it from our
        own positions, count what precedes it, dead-letter its offset range and read on after it."""
        assert self.consumer is not None
        await self._settle(keep=0)
        found = False
        for tp in self.positions.readable():
            start = self.positions.log_ends.next_offset(tp)
            if start is None:
                continue
            try:
                span = await unreadable_batches.locate(self.consumer, tp, start)
            except (KafkaError, OSError) as err:
                log.warning("%s[%d]: cannot look for an unreadable batch (%s)", *tp, err)
                span = None
            if span is None:
                self.positions.seek(tp, start)  # aiokafka may have moved past records unreturned
                continue
            found = True
            await self._dead_letter_unreadable(tp, start, span, exc)
        if not found:
            await unreadable_batches.nothing_found(exc)

    async def _dead_letter_unreadable(
        self, tp: TopicPartition, start: int, span: tuple[int, int], exc: Exception
    ) -> None:
        """Count the records from ``start`` up to the unreadable ``span``, dead-letter the span
        and read on after it."""
        assert self.consumer is not None
        first, last = span
        before = await unreadable_batches.read_before(self.consumer, tp, start, first)
        if before:
            await self._process({tp: before})
            await self._settle(keep=0)
        await unreadable_batches.dead_letter(self.ingestor, self.telemetry, tp, span, exc)
        self.positions.seek(tp, last + 1)

    async def _process(self, got: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        """Start this round's applies (one task per partition batch; one decodes and aggregates
        while Redis executes another's script), then settle the round before it: fetching and
        decoding the next round overlaps Redis's work on this one."""
        step = self.settings.apply_max_events
        work = [
            (tp, records[i : i + step])
            for tp, records in got.items()
            if records and self.positions.counts(tp)
            for i in range(0, len(records), step)
        ]
        for tp, records in work:
            self.positions.log_ends.positioned(tp, records[-1].offset + 1)
        self.pipeline.submit(work)
        await self._settle()

    async def _settle(self, keep: int | None = None) -> None:
        outage = self._handle(await self.pipeline.settle(keep))
        if outage is not None:
            self.health.failed("apply", outage)
            self._handle(await self.pipeline.settle(keep=0))  # the rest ends before seeking back
            self._rewound.clear()
            await self.positions.resync_after_outage()
        elif self._rewound:
            self._handle(await self.pipeline.settle(keep=0))  # the rest ends before seeking back
            for tp, offset in self._rewound.items():
                if tp in self.positions.assignment:
                    await self.positions.read_again(tp, offset)
            self._rewound.clear()

    def _handle(self, settled: list[Settled]) -> StoreUnavailable | None:
        """Account settled applies: fences, metrics, Kafka commits (lag visibility only)."""
        outage: StoreUnavailable | None = None
        for s in settled:
            if isinstance(s.error, PartitionFenced):
                self.positions.fence(s.tp, s.error)
            elif isinstance(s.error, PartitionRewound):
                self._rewound[s.tp] = s.error.resume_offset
            elif isinstance(s.error, StoreUnavailable):
                outage = s.error
            elif isinstance(s.error, Aborted):
                continue  # the batch before it says why
            elif s.error is not None:
                raise s.error
            elif s.outcome is not None:
                self._observe(s.tp, s.span, s.outcome, s.seconds)
                if s.tp in self.positions.assignment:
                    self.commits.applied(s.tp, s.span.last_offset)
        self.commits.maybe_commit()
        return outage

    def _observe(
        self, tp: TopicPartition, span: Span, outcome: BatchOutcome, seconds: float
    ) -> None:
        self.telemetry.observe_batch(
            tp.topic, outcome, seconds, [span.first_timestamp, span.last_timestamp], span.count
        )
        self.ingestor.note_last_record(tp.topic, tp.partition, span.last_timestamp)


def counting_consumer(s: Settings) -> AIOKafkaConsumer:
    """The batch engine's consumer of the counted topics (read_committed, never auto-commits)."""
    return make_consumer(
        s.kafka,
        group_id=f"{s.consumer_group}.counters",
        client_id=f"{s.worker_id}-counters",
        # Never reset silently: a position out of range is handled in Positions.out_of_range.
        auto_offset_reset="none",
        fetch_max_wait_ms=s.fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
        session_timeout_ms=int(s.session_timeout_s * 1000),
        heartbeat_interval_ms=int(s.heartbeat_interval_s * 1000),
        max_poll_interval_ms=600_000,
    )


def _fmt(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))
