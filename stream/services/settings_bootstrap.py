"""Read the compacted shops topic from the beginning to its current end, once, at start.

This is what makes "settings first" hold on a fresh Redis: every setting published before the
worker started is known before it counts any event.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiokafka import TopicPartition

from schemas.decode import decode
from schemas.models import Kind, ShopSettings
from stream.kafka.clients import make_consumer
from stream.state.shop_directory import ShopDirectory

log = logging.getLogger(__name__)


async def read_to_end(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """All (key, value) records of ``topic`` up to the end offsets seen when called."""
    consumer = make_consumer(bootstrap, group_id=None, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        out: list[tuple[bytes | None, bytes | None]] = []
        while pending:
            got = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in got.items():
                for r in records:
                    if r.offset < ends[tp]:
                        out.append((r.key, r.value))
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()


async def bootstrap_settings(
    bootstrap: str, topic: str, directory: ShopDirectory, now: datetime
) -> int:
    """Apply every shop setting on the topic to ``directory`` (and Redis); returns how many."""
    applied = 0
    for key, value in await read_to_end(bootstrap, topic):
        result = decode(Kind.SHOP, key, value, now)
        if isinstance(result, ShopSettings):
            await directory.apply(result)
            applied += 1
        elif value is None and key:
            await directory.remove(key.decode(errors="replace"))
    await directory.refresh()
    log.info("shop settings loaded: %d records applied, %d shops known", applied, len(directory))
    return applied
