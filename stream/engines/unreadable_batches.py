"""Batches that no client can read: a wrong CRC, compressed bytes that do not decompress, a
codec nobody knows. aiokafka raises from ``getmany`` (``CorruptRecordException``,
``UnsupportedCodecError``, or the decompressor's own error such as ``zlib.error``) without
saying which partition or offsets, and after it may move its position past records it had
already unpacked but never returned. So the engine, on such an error, locates the batch itself:
one raw fetch per owned partition from the engine's own position, walking the record batches
until one fails to validate or to decompress. Its offset range is then dead-lettered and
skipped, the records before it are read one at a time (so none is lost with the batch), and the
fault is counted in ``upsell_unreadable_batches_total``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, KafkaError, UnsupportedCodecError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from stream.ingest.ingestor import Ingestor
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

UNREADABLE = (CorruptRecordException, UnsupportedCodecError)
_READ_COMMITTED = 1
_FETCH_BYTES = 8 * 1024 * 1024
_MAX_FETCHES = 16
_WAIT_MS = 100  # Tansu answers a fetch that may not wait (0 ms) with no data at all


async def locate(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int
) -> tuple[int, int] | None:
    """The (first, last) offsets of the first unreadable batch at or after ``start``, reading
    up to ``_MAX_FETCHES`` fetches ahead; None when every batch there reads."""
    client: Any = consumer._client
    position = start
    for _ in range(_MAX_FETCHES):
        node = client.cluster.leader_for_partition(tp)
        request = FetchRequest(
            _WAIT_MS,
            1,
            _FETCH_BYTES,
            _READ_COMMITTED,
            [(tp.topic, [(tp.partition, position, _FETCH_BYTES)])],
        )
        response = await client.send(node, request)
        raw = b"".join(
            bytes(part[-1]) for _topic, parts in response.topics for part in parts if part[1] == 0
        )
        records = MemoryRecords(raw) if raw else None
        if records is None or not records.has_next():
            return None
        while records.has_next():
            batch = records.next_batch()
            if batch.next_offset <= position:
                continue
            if not _readable(batch):
                return batch.base_offset, batch.next_offset - 1
            position = batch.next_offset
    return None


def _readable(batch: Any) -> bool:
    try:
        if not batch.validate_crc():
            return False
        for _record in batch:
            pass
    except Exception:  # whatever a decompressor raises on garbage
        return False
    return True


async def read_before(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, first: int
) -> list[Any]:
    """The readable records from ``start`` up to the unreadable batch at ``first``, read one per
    call: a call that meets the batch raises before it unpacked anything it would drop."""
    consumer.seek(tp, start)
    out: list[Any] = []
    idle = 0
    while await consumer.position(tp) < first and idle < 20:
        try:
            got = await consumer.getmany(tp, timeout_ms=250, max_records=1)
        except UNREADABLE:
            break
        except KafkaError:
            raise
        except Exception:  # a decompressor's error: the batch itself
            break
        records = got.get(tp, [])
        idle = 0 if records else idle + 1
        out.extend(r for r in records if r.offset < first)
    return out


async def skip_past(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int
) -> tuple[int, int, list[Any]] | None:
    """For an engine that cannot settle in between (Faust): locate the unreadable batch at or
    after ``start``, read the records before it and move the position past it, in one call on
    the consumer's own loop. None (the position back at ``start``) when every batch reads."""
    span = await locate(consumer, tp, start)
    if span is None:
        consumer.seek(tp, start)  # aiokafka may have moved past records it never returned
        return None
    first, last = span
    before = await read_before(consumer, tp, start, first)
    consumer.seek(tp, last + 1)
    return first, last, before


async def dead_letter(
    ingestor: Ingestor, telemetry: Telemetry, tp: TopicPartition, span: tuple[int, int], exc: Any
) -> None:
    """Offsets ``span`` (first, last) of ``tp`` cannot be read: one dead letter names the range,
    ``upsell_unreadable_batches_total`` counts it and an error line says where reading goes on."""
    first, last = span
    reason = f"{type(exc).__name__}: {exc}"
    await ingestor.dead_letter_range(tp.topic, tp.partition, first, last, reason)
    telemetry.unreadable_batches.labels(tp.topic).inc()
    log.error(
        "%s[%d]: offsets %d..%d cannot be read (%s); dead-lettered, reading on from %d",
        tp.topic,
        tp.partition,
        first,
        last,
        reason,
        last + 1,
    )


async def nothing_found(exc: Exception) -> None:
    """A fetch failed but no owned partition holds an unreadable batch: wait, then fetch again."""
    log.warning(
        "a fetch failed (%s: %s), no unreadable batch found; retrying", type(exc).__name__, exc
    )
    await asyncio.sleep(1.0)
