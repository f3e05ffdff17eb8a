"""Redis that went back in time, under the Faust engine: read the lost range again beside Faust.

Redis answered **rewound** (or the idle check found its checkpoint behind what this worker
wrote): it holds a partition only up to an offset below the next one the engine counts. The
batch engine seeks its consumer back. Seeking Faust's consumer back proved unreliable: messages
fetched before the seek still arrive (from the agent's buffer and from a fetch under way), and
Faust's drain keeps a read offset of its own that those stale messages move past the seek, so
the re-read began late and records were lost (2 of 5 runs of tests/integration/
test_redis_rewind.py before this module). So Faust's position is never moved back: a plain
consumer of our own (no group, read_committed) reads the lost range ``[from, end)`` again and
applies it through the Ingestor, while the partition's agent waits (the engine holds the
partition's lock); Faust then goes on from ``end``, the next offset the engine counts, as if
nothing had happened. Records Kafka no longer has are counted lost (Ingestor.lost_to_retention),
here and when Faust's first message after a (re)start lies past the resume offset because the
log start moved past it.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from faust.types import TP

from stream.engines import unreadable_batches
from stream.ingest.ingestor import Ingestor
from stream.ingest.types import PartitionRewound
from stream.kafka.clients import make_consumer
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.state.store import StoreUnavailable

log = logging.getLogger(__name__)

_IDLE_FETCHES = 20  # empty fetches in a row below ``end`` before the range is taken as read


class Rereader:
    def __init__(self, *, settings: Settings, ingestor: Ingestor, health: StoreHealth) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.health = health

    async def repair(self, key: tuple[str, int], first: int, end: int) -> None:
        """Apply offsets ``first`` .. ``end - 1`` of the partition again, until Redis holds them:
        a further rewind meanwhile starts over from where Redis then is; PartitionFenced
        propagates (the partition has a new owner)."""
        while first < end:
            try:
                await self._read(key, first, end)
                return
            except PartitionRewound as exc:
                first = exc.resume_offset
            except StoreUnavailable as exc:
                self.health.failed("apply", exc)
                first = await self.health.retry(partial(self.ingestor.assign, *key))
            except (KafkaError, OSError) as exc:
                log.warning("%s[%d]: reading again failed (%s); retrying", *key, exc)
                await asyncio.sleep(1.0)

    async def _read(self, key: tuple[str, int], first: int, end: int) -> None:
        topic, part = key
        tp = TopicPartition(topic, part)
        consumer = self._consumer()
        await consumer.start()
        try:
            consumer.assign([tp])
            start = int((await consumer.beginning_offsets([tp])).get(tp, 0))
            position = self.ingestor.resume_in_log(topic, part, first, min(start, end))
            consumer.seek(tp, position)
            idle = 0
            while position < end and idle < _IDLE_FETCHES:
                try:
                    got = await consumer.getmany(
                        tp, timeout_ms=250, max_records=self.settings.batch_max_events
                    )
                except OffsetOutOfRangeError:  # retention moved on while reading
                    start = int((await consumer.beginning_offsets([tp])).get(tp, 0))
                    position = self.ingestor.resume_in_log(topic, part, position, min(start, end))
                    consumer.seek(tp, position)
                    continue
                except (
                    Exception
                ) as exc:  # an unreadable batch (a decompressor's error), or a real one
                    position = await self._skip_unreadable(consumer, tp, position, end, exc)
                    continue
                records = [r for r in got.get(tp, []) if r.offset < end]
                idle = 0 if records else idle + 1
                if records:
                    await self.ingestor.process(topic, part, records)
                position = max(position, await consumer.position(tp))
            if position < end:
                log.warning(
                    "%s[%d]: reading %d..%d again ended at %d (no more records there)",
                    topic,
                    part,
                    first,
                    end - 1,
                    position,
                )
            log.info("%s[%d]: offsets %d..%d read again and counted", topic, part, first, end - 1)
        finally:
            await consumer.stop()

    async def _skip_unreadable(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        position: int,
        end: int,
        exc: Exception,
    ) -> int:
        """The range holds a batch no client can read (dead-lettered when first met): count the
        records before it, dead-letter it again (a repeated dead letter, as when a restarted
        worker meets it) and go on after it. Other errors propagate."""
        if isinstance(exc, KafkaError) and not isinstance(exc, unreadable_batches.UNREADABLE):
            raise exc
        skipped = await unreadable_batches.skip_past(consumer, tp, position)
        if skipped is None:
            raise exc
        first, last, before = skipped
        records = [r for r in before if r.offset < end]
        if records:
            await self.ingestor.process(tp.topic, tp.partition, records)
        if first >= end:
            return end
        detail = f"{type(exc).__name__}: {exc}"
        await self.ingestor.dead_letter_range(tp.topic, tp.partition, first, last, detail)
        return last + 1

    async def lost_before(
        self, consumer: Any, key: tuple[str, int], start: int, first: int
    ) -> None:
        """Counting resumes at ``start`` but Faust's first message is ``first``: the records
        Kafka's log start has passed (retention deleted them unread, and Faust's consumer read
        on from the log start) are counted lost. A gap Kafka leaves itself (transaction
        markers, a skipped unreadable batch) is not."""
        tp = TP(*key)
        try:
            log_start = int((await consumer.earliest_offsets(tp)).get(tp) or 0)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("log start of %s[%d] unknown (%s)", key[0], key[1], exc)
            return
        if log_start > start:
            self.ingestor.lost_to_retention(key[0], key[1], start, min(log_start, first))

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return make_consumer(
            s.kafka,
            client_id=f"{s.worker_id}-reread",
            auto_offset_reset="none",
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
