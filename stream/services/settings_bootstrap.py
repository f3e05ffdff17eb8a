"""Read the compacted shops topic from the beginning to its current end, once, at start.

This is what makes "settings first" hold on a fresh Redis: every setting published before the
worker started is known before it counts any event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime

from aiokafka import TopicPartition

from schemas.decode import decode
from schemas.models import Kind, ShopSettings
from stream.kafka.clients import make_consumer
from stream.state.shop_directory import ShopDirectory

log = logging.getLogger(__name__)


async def read_to_end(
    bootstrap: str, topic: str
) -> AsyncIterator[list[tuple[bytes | None, bytes | None]]]:
    """The (key, value) records of ``topic`` up to the end offsets seen when called, one fetch
    at a time (never the whole topic in memory)."""
    consumer = make_consumer(bootstrap, group_id=None, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            got = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in got.items():
                yield [(r.key, r.value) for r in records if r.offset < ends[tp]]
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


async def bootstrap_settings(
    bootstrap: str, topic: str, directory: ShopDirectory, now: datetime
) -> int:
    """Apply every shop setting on the topic to ``directory`` (and Redis); returns how many."""
    applied = 0
    async for records in read_to_end(bootstrap, topic):
        for key, value in records:
            result = decode(Kind.SHOP, key, value, now)
            if isinstance(result, ShopSettings):
                await directory.apply(result)
                applied += 1
            elif value is None and key:
                await directory.remove(key.decode(errors="replace"))
    log.info("shop settings loaded: %d records applied", applied)
    return applied
