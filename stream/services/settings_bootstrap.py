"""Read the compacted shops topic from the beginning to its current end, once, at start.

This is what makes "settings first" hold on a fresh Redis: every setting published before the
worker started is known before it counts any event.
"""

from __future__ import annotations

import logging
from datetime import datetime

from schemas.decode import decode
from schemas.models import Kind, ShopSettings
from stream.kafka.reading import read_to_end
from stream.kafka.security import KafkaTarget
from stream.state.shop_directory import ShopDirectory

log = logging.getLogger(__name__)


async def bootstrap_settings(
    target: KafkaTarget, topic: str, directory: ShopDirectory, now: datetime
) -> int:
    """Apply every shop setting on the topic to ``directory`` (and Redis); returns how many."""
    applied = 0
    async for records in read_to_end(target, topic):
        changes: dict[str, ShopSettings | None] = {}  # the last record of a shop wins
        for key, value in ((r.key, r.value) for r in records):
            result = decode(Kind.SHOP, key, value, now)
            if isinstance(result, ShopSettings):
                changes[result.shop_id] = result
                applied += 1
            elif value is None and key:
                changes[key.decode(errors="replace")] = None
        await directory.write(changes)  # one Redis round trip per fetch
    log.info("shop settings loaded: %d records applied", applied)
    return applied
