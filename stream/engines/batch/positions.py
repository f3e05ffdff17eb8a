"""Where the batch engine reads each of its partitions next, and every move away from the plain
next fetch.

The engine's consumer never resets a position on its own (``auto_offset_reset="none"``): a
partition resumes from the checkpoint Redis holds when it is assigned, and is seeked again when
the broker says a position is out of range, when its log restarted below the checkpoint, when
Redis went back in time or away, or when the consumer lost a position. A partition another
worker claimed meanwhile is fenced: paused until the group rebalances.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stream.engines.log_end_watch import LogEndWatch
from stream.ingest.ingestor import Ingestor
from stream.ingest.types import PartitionFenced
from stream.state.health import StoreHealth
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0  # log ends and (while idle) Redis rewinds are checked this often


class Positions:
    """The engine's assigned partitions, the fenced ones among them, and their read positions."""

    def __init__(self, *, ingestor: Ingestor, telemetry: Telemetry, health: StoreHealth) -> None:
        self.ingestor = ingestor
        self.telemetry = telemetry
        self.health = health
        self.consumer: AIOKafkaConsumer | None = None  # set once the engine started it
        self.assignment: set[TopicPartition] = set()
        self.fenced: set[TopicPartition] = set()
        self.log_ends = LogEndWatch()
        self._log_end_checked = 0.0
        self._rewinds_checked = 0.0

    def readable(self) -> list[TopicPartition]:
        """The assigned partitions this worker may count, in order."""
        return sorted(self.assignment - self.fenced)

    def counts(self, tp: TopicPartition) -> bool:
        return tp in self.assignment and tp not in self.fenced

    # -- rebalance -----------------------------------------------------------------------------
    async def assigned(self, tps: list[TopicPartition]) -> None:
        """Claim each partition in Redis and read it from the checkpoint Redis holds."""
        assert self.consumer is not None
        for tp in sorted(tps):
            try:
                offset = await self.health.retry(
                    partial(self.ingestor.assign, tp.topic, tp.partition)
                )
            except PartitionFenced as exc:
                log.warning("%s", exc)
                self.fenced.add(tp)
                self.consumer.pause(tp)
                continue
            self.seek(tp, offset)
            self.consumer.resume(tp)
            self.assignment.add(tp)
            self.fenced.discard(tp)

    def revoked(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self.ingestor.revoke(tp.topic, tp.partition)
            self.log_ends.forget(tp)
            self.assignment.discard(tp)
            self.fenced.discard(tp)

    # -- moves ---------------------------------------------------------------------------------
    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert self.consumer is not None
        self.consumer.seek(tp, offset)
        self.log_ends.positioned(tp, offset)

    def fence(self, tp: TopicPartition, exc: PartitionFenced) -> None:
        assert self.consumer is not None
        if (tp.topic, tp.partition) in self.ingestor.partitions:
            return  # claimed again meanwhile (a rebalance); the new claim stands
        log.warning("%s; pausing it until the group rebalances", exc)
        self.fenced.add(tp)
        self.consumer.pause(tp)

    async def reclaim(self, tps: list[TopicPartition]) -> None:
        """Positions the consumer lost (it never resets on its own): resume from Redis."""
        for tp in tps:
            if tp in self.assignment:
                offset = await self.health.retry(
                    partial(self.ingestor.assign, tp.topic, tp.partition)
                )
                self.seek(tp, offset)

    async def out_of_range(self, positions: dict[TopicPartition, int]) -> None:
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
            if position < start:  # metric, log and /readyz detail
                self.ingestor.lost_to_retention(tp.topic, tp.partition, position, start)
                self.seek(tp, start)
                continue
            if self.log_ends.out_of_range(tp):
                await self._restart_log(tp)
            else:
                self.consumer.seek(tp, position)  # wait: the broker may still be starting
        await asyncio.sleep(0.5)

    async def check_log_ends(self) -> None:
        """Once a second: a position past the fetch high watermark means the log restarted."""
        if self.consumer is None:  # the engine stopped it while the loop's last turn ran: the
            return  # check at the end of that turn crashed the engine at every shutdown
        now = time.monotonic()
        if now - self._log_end_checked < CHECK_EVERY_S:
            return
        self._log_end_checked = now
        for tp in self.readable():
            if self.log_ends.high_watermark(tp, self.consumer.highwater(tp)):
                await self._restart_log(tp)

    async def _restart_log(self, tp: TopicPartition) -> None:
        try:
            offset = await self.health.retry(
                partial(self.ingestor.restart_log, tp.topic, tp.partition)
            )
        except PartitionFenced as exc:
            self.fence(tp, exc)
            return
        self.seek(tp, offset)

    # -- Redis went back in time, or away ------------------------------------------------------
    async def read_again(self, tp: TopicPartition, offset: int) -> None:
        """Seek back after Redis went back in time, but not below what Kafka still holds."""
        assert self.consumer is not None
        try:
            start = (await self.consumer.beginning_offsets([tp])).get(tp, 0)
        except (KafkaError, OSError) as exc:
            log.warning("log start of %s[%d] unknown (%s)", tp.topic, tp.partition, exc)
            start = 0  # a position below it still ends in out_of_range, which says so
        self.seek(tp, self.ingestor.resume_in_log(tp.topic, tp.partition, offset, start))

    async def check_rewinds(self) -> None:
        """While idle, once a second: has Redis gone back behind what this worker wrote? (A
        busy partition's next apply notices by itself.)"""
        now = time.monotonic()
        if now - self._rewinds_checked < CHECK_EVERY_S:
            return
        self._rewinds_checked = now
        for tp in self.readable():
            try:
                offset = await self.ingestor.verify(tp.topic, tp.partition)
            except StoreUnavailable as exc:
                log.debug("rewind check skipped: %s", exc)
                return
            if offset is not None:
                await self.read_again(tp, offset)

    async def resync_after_outage(self) -> None:
        """Redis went away mid-batch: wait for it, then resume every partition from Redis's
        checkpoints (Redis may have lost its last writes; its checkpoint says what it holds)."""

        async def reclaim() -> None:
            for tp in sorted(self.assignment):
                offset = await self.ingestor.assign(tp.topic, tp.partition)
                self.seek(tp, offset)

        await self.health.retry(reclaim)
