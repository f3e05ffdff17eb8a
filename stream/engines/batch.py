"""The default engine for the high-volume topics: aiokafka ``getmany`` batches into the Ingestor.

A :class:`mode.Service`, so the Faust app starts and stops it with the worker. Kafka's committed
offsets are written for lag visibility only: on assignment each partition resumes from the
checkpoint stored in Redis, whatever Kafka says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from stream.engines import unreadable_batches
from stream.engines.log_end_watch import LogEndWatch
from stream.engines.pipeline import Aborted, ApplyPipeline, Settled, Span
from stream.ingest.ingestor import Ingestor
from stream.ingest.types import BatchOutcome, PartitionFenced, PartitionRewound
from stream.kafka.clients import make_consumer
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

_COMMIT_EVERY_S = 1.0


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
        self.consumer: AIOKafkaConsumer | None = None
        self.assignment: set[TopicPartition] = set()
        self._fenced: set[TopicPartition] = set()
        self.log_ends = LogEndWatch()
        self.pipeline = ApplyPipeline(ingestor)
        self._to_commit: dict[TopicPartition, OffsetAndMetadata] = {}
        self._committed_at = 0.0
        self._log_end_checked = 0.0
        self._rewinds_checked = 0.0
        self._rewound: dict[TopicPartition, int] = {}  # read again from, after this round
        self.joined = False  # the group gave this worker its (possibly empty) share once

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def on_stop(self) -> None:
        try:
            await asyncio.wait_for(self.pipeline.settle(keep=0), timeout=10)
        except (TimeoutError, Exception) as exc:  # stopping anyway: applies are atomic
            log.debug("in-flight applies at stop: %s", exc)
            self.pipeline.cancel()
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    def highwater(self, topic: str, partition: int) -> int | None:
        """The last fetch response's high watermark of the partition (None before one)."""
        if self.consumer is None:
            return None
        high: int | None = self.consumer.highwater(TopicPartition(topic, partition))
        return high

    # -- rebalance -----------------------------------------------------------------------------
    async def assigned(self, tps: list[TopicPartition]) -> None:
        assert self.consumer is not None
        for tp in sorted(tps):
            try:
                offset = await self.health.retry(
                    partial(self.ingestor.assign, tp.topic, tp.partition)
                )
            except PartitionFenced as exc:
                log.warning("%s", exc)
                self._fenced.add(tp)
                self.consumer.pause(tp)
                continue
            self._seek(tp, offset)
            self.consumer.resume(tp)
            self.assignment.add(tp)
            self._fenced.discard(tp)
        self.joined = True
        self._publish_assignment()
        log.info("assigned %d partitions: %s", len(tps), _fmt(tps))

    async def revoked(self, tps: list[TopicPartition]) -> None:
        await self.pipeline.wait_for(tps)  # no apply of ours runs once the group moves them
        for tp in tps:
            self.ingestor.revoke(tp.topic, tp.partition)
            self.log_ends.forget(tp)
            self.assignment.discard(tp)
            self._fenced.discard(tp)
        self._publish_assignment()
        if tps:
            log.info("revoked %d partitions: %s", len(tps), _fmt(tps))

    def _publish_assignment(self) -> None:
        for topic in self.settings.topics.counted:
            n = sum(1 for tp in self.assignment if tp.topic == topic)
            self.telemetry.assigned_partitions.labels(topic).set(n)

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        await self.ready_to_count.wait()
        self.consumer = self._consumer_factory()
        self.consumer.subscribe(list(self.settings.topics.counted), listener=_Rebalance(self))
        await self.consumer.start()
        log.info("batch engine consuming %s", ", ".join(self.settings.topics.counted))
        while not self.should_stop:
            try:
                got = await self.consumer.getmany(
                    timeout_ms=self.settings.batch_linger_ms or 1,
                    max_records=self.settings.batch_max_events,
                )
            except OffsetOutOfRangeError as exc:
                await self._out_of_range(exc.args[0] if exc.args else {})
                continue
            except NoOffsetForPartitionError as exc:
                await self._reclaim([tp for tp in exc.args if isinstance(tp, TopicPartition)])
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
                self._maybe_commit()
                await self._check_rewinds()
            await self._check_log_ends()

    async def _out_of_range(self, positions: dict[TopicPartition, int]) -> None:
        """The broker says a position is outside its log. Below the log start: the retention
        deleted events before we read them; read on from the start (and say so loudly). Past the
        log end: a broker that lost its data (the embedded one keeps none), or a recreated topic.
        A broker may answer so briefly while it starts, so only after several consecutive
        answers is the partition counted as a new log from offset 0 (in a new epoch)."""
        assert self.consumer is not None
        tps = [tp for tp in positions if tp in self.assignment]
        if not tps:
            return
        try:
            starts = await self.consumer.beginning_offsets(tps)
        except (KafkaError, OSError) as exc:
            log.warning("out of range, and the log start is unknown (%s); retrying", exc)
            await asyncio.sleep(1.0)
            return
        for tp in tps:
            position, start = positions[tp], starts.get(tp, 0)
            if position < start:
                log.error(
                    "%s[%d]: events %d..%d were deleted by retention before they were "
                    "read; reading on from %d",
                    tp.topic,
                    tp.partition,
                    position,
                    start - 1,
                    start,
                )
                self.telemetry.records_lost.labels(tp.topic).inc(start - position)
                self._seek(tp, start)
                continue
            if self.log_ends.out_of_range(tp):
                await self._restart_log(tp)
            else:
                self.consumer.seek(tp, position)  # wait: the broker may still be starting
        await asyncio.sleep(0.5)

    async def _skip_unreadable(self, exc: Exception) -> None:
        """A fetched batch cannot be read (stream/unreadable_batches.py): find it from our own
        positions, count what precedes it, dead-letter its offset range and read on after it."""
        assert self.consumer is not None
        await self._settle(keep=0)
        found = False
        for tp in sorted(self.assignment - self._fenced):
            start = self.log_ends.next_offset(tp)
            if start is None:
                continue
            try:
                span = await unreadable_batches.locate(self.consumer, tp, start)
            except (KafkaError, OSError) as err:
                log.warning("%s[%d]: cannot look for an unreadable batch (%s)", *tp, err)
                span = None
            if span is None:
                self._seek(tp, start)  # aiokafka may have moved past records it never returned
                continue
            found, (first, last) = True, span
            before = await unreadable_batches.read_before(self.consumer, tp, start, first)
            if before:
                await self._process({tp: before})
                await self._settle(keep=0)
            reason = f"{type(exc).__name__}: {exc}"
            await self.ingestor.dead_letter_range(tp.topic, tp.partition, first, last, reason)
            self.telemetry.unreadable_batches.labels(tp.topic).inc()
            log.error(
                "%s[%d]: offsets %d..%d cannot be read (%s); dead-lettered, reading on from %d",
                tp.topic,
                tp.partition,
                first,
                last,
                reason,
                last + 1,
            )
            self._seek(tp, last + 1)
        if not found:
            log.warning(
                "a fetch failed (%s: %s), no unreadable batch found; retrying",
                type(exc).__name__,
                exc,
            )
            await asyncio.sleep(1.0)

    async def _check_log_ends(self) -> None:
        """Once a second: a position past the fetch high watermark means the log restarted."""
        assert self.consumer is not None
        now = time.monotonic()
        if now - self._log_end_checked < 1.0:
            return
        self._log_end_checked = now
        for tp in sorted(self.assignment - self._fenced):
            if self.log_ends.high_watermark(tp, self.consumer.highwater(tp)):
                await self._restart_log(tp)

    async def _restart_log(self, tp: TopicPartition) -> None:
        assert self.consumer is not None
        try:
            offset = await self.health.retry(
                partial(self.ingestor.restart_log, tp.topic, tp.partition)
            )
        except PartitionFenced as exc:
            self._fence(tp, exc)
            return
        self._seek(tp, offset)

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        assert self.consumer is not None
        self.consumer.seek(tp, offset)
        self.log_ends.positioned(tp, offset)

    async def _reclaim(self, tps: list[TopicPartition]) -> None:
        """Positions the consumer lost (it never resets on its own): resume from Redis."""
        assert self.consumer is not None
        for tp in tps:
            if tp in self.assignment:
                offset = await self.health.retry(
                    partial(self.ingestor.assign, tp.topic, tp.partition)
                )
                self._seek(tp, offset)

    def _fence(self, tp: TopicPartition, exc: PartitionFenced) -> None:
        assert self.consumer is not None
        if (tp.topic, tp.partition) in self.ingestor.partitions:
            return  # claimed again meanwhile (a rebalance); the new claim stands
        log.warning("%s; pausing it until the group rebalances", exc)
        self._fenced.add(tp)
        self.consumer.pause(tp)

    async def _process(self, got: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        """Start this round's applies (one task per partition batch; one decodes and aggregates
        while Redis executes another's script), then settle the round before it: fetching and
        decoding the next round overlaps Redis's work on this one."""
        work = [
            (tp, records)
            for tp, records in got.items()
            if records and tp not in self._fenced and tp in self.assignment
        ]
        for tp, records in work:
            self.log_ends.positioned(tp, records[-1].offset + 1)
        self.pipeline.submit(work)
        await self._settle()

    async def _settle(self, keep: int | None = None) -> None:
        outage = self._handle(await self.pipeline.settle(keep))
        if outage is not None:
            self.health.failed("apply", outage)
            self._handle(await self.pipeline.settle(keep=0))  # the rest ends before seeking back
            self._rewound.clear()
            await self._resync_after_outage()
        elif self._rewound:
            self._handle(await self.pipeline.settle(keep=0))  # the rest ends before seeking back
            for tp, offset in self._rewound.items():
                if tp in self.assignment:
                    await self._read_again(tp, offset)
            self._rewound.clear()

    async def _read_again(self, tp: TopicPartition, offset: int) -> None:
        """Seek back after Redis went back in time, but not below what Kafka still holds."""
        assert self.consumer is not None
        try:
            start = (await self.consumer.beginning_offsets([tp])).get(tp, 0)
        except (KafkaError, OSError) as exc:
            log.warning("log start of %s[%d] unknown (%s)", tp.topic, tp.partition, exc)
            start = 0  # a position below it still ends in _out_of_range, which says so
        self._seek(tp, self.ingestor.resume_in_log(tp.topic, tp.partition, offset, start))

    async def _check_rewinds(self) -> None:
        """While idle, once a second: has Redis gone back behind what this worker wrote? (A
        busy partition's next apply notices by itself.)"""
        now = time.monotonic()
        if now - self._rewinds_checked < 1.0:
            return
        self._rewinds_checked = now
        for tp in sorted(self.assignment - self._fenced):
            try:
                offset = await self.ingestor.verify(tp.topic, tp.partition)
            except StoreUnavailable as exc:
                log.debug("rewind check skipped: %s", exc)
                return
            if offset is not None:
                await self._read_again(tp, offset)

    def _handle(self, settled: list[Settled]) -> StoreUnavailable | None:
        """Account settled applies: fences, metrics, Kafka commits (lag visibility only)."""
        assert self.consumer is not None
        outage: StoreUnavailable | None = None
        commits: dict[TopicPartition, OffsetAndMetadata] = {}
        for s in settled:
            if isinstance(s.error, PartitionFenced):
                self._fence(s.tp, s.error)
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
                if s.tp in self.assignment:
                    commits[s.tp] = OffsetAndMetadata(s.span.last_offset + 1, "")
        self._to_commit.update(commits)
        self._maybe_commit()
        return outage

    def _maybe_commit(self) -> None:
        now = time.monotonic()
        if self._to_commit and now - self._committed_at >= _COMMIT_EVERY_S:
            self._committed_at = now
            self.add_future(self._commit(self._to_commit))
            self._to_commit = {}

    async def _commit(self, commits: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Kafka's committed offsets serve lag monitoring only, so once a second is plenty."""
        if self.consumer is None:
            return
        try:
            await self.consumer.commit(commits)
        except (CommitFailedError, KafkaError) as exc:
            log.debug("commit for lag visibility failed: %s", exc)

    async def _resync_after_outage(self) -> None:
        """Redis went away mid-batch: wait for it, then resume every partition from Redis's
        checkpoints (Redis may have lost its last writes; its checkpoint says what it holds)."""
        assert self.consumer is not None

        async def reclaim() -> None:
            assert self.consumer is not None
            for tp in sorted(self.assignment):
                offset = await self.ingestor.assign(tp.topic, tp.partition)
                self._seek(tp, offset)

        await self.health.retry(reclaim)

    def _observe(
        self, tp: TopicPartition, span: Span, outcome: BatchOutcome, seconds: float
    ) -> None:
        self.telemetry.observe_batch(
            tp.topic,
            tp.partition,
            outcome,
            seconds,
            [span.first_timestamp, span.last_timestamp],
            span.count,
        )


def counting_consumer(s: Settings) -> AIOKafkaConsumer:
    """The batch engine's consumer of the counted topics (read_committed, never auto-commits)."""
    return make_consumer(
        s.kafka_bootstrap,
        group_id=f"{s.consumer_group}.counters",
        client_id=f"{s.worker_id}-counters",
        # Never reset silently: a position out of range is handled in _out_of_range.
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
