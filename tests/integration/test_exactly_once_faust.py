"""Exactly once through the Faust engine's own batches, against a real redis-server.

Faust's fetcher keeps a partition's last delivered offset and passes on every fetched message at
or above it. After a seek (the engine's seek to the Redis checkpoint, Faust's own seek to its
committed offset, racing each other on a takeover) it therefore delivers that last message a
second time, and both copies can land in one ``take_events`` batch (docs/state.md, "Exactly
once"). The agent is driven here with such a batch, as Faust hands it over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import faust
import orjson
import pytest
from redis.asyncio import Redis

from stream.devtools.offline_ingestor import offline_ingestor
from stream.engines.faust import FaustCounting
from stream.settings import Settings, Topics
from stream.state import keys
from stream.state.health import StoreHealth
from stream.state.redis import RedisStore, connect
from stream.telemetry import Telemetry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass(frozen=True)
class Message:
    """What the engine reads of a Faust ``Message``."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp: float  # seconds, as Faust gives it


@dataclass(frozen=True)
class Event:
    message: Message


class TakeEvents:
    """A Faust stream whose ``take_events`` yields the given batches, then ends."""

    def __init__(self, batches: list[list[Message]]) -> None:
        self.batches = batches

    async def take_events(self, _max: int, within: float) -> AsyncIterator[list[Event]]:
        for batch in self.batches:
            yield [Event(m) for m in batch]


async def test_a_view_redelivered_after_a_seek_in_the_same_batch_counts_once(
    redis_url: str, topics: Topics
) -> None:
    now = datetime.now(UTC)
    occurred = now - timedelta(hours=1)
    shop, part = "shop-utc", 2
    store = RedisStore(connect(redis_url, cluster=False))
    telemetry = Telemetry()
    ingestor = await offline_ingestor(store, topics, [(shop, "UTC")], now, retention_days=30)
    ready = asyncio.Event()
    ready.set()
    engine = FaustCounting(
        faust.App("exactly-once-faust"),
        settings=Settings(topic_prefix=topics.prefix),
        ingestor=ingestor,
        telemetry=telemetry,
        health=StoreHealth(telemetry),
        ready_to_count=ready,
    )
    engine.resume[(topics.views, part)] = await ingestor.assign(topics.views, part)

    def view(offset: int) -> Message:
        doc = {
            "event_id": f"v-{offset}",
            "shop_id": shop,
            "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
            "group_id": "g",
            "variation_id": "a",
        }
        ts = occurred.timestamp()
        return Message(topics.views, part, offset, shop.encode(), orjson.dumps(doc), ts)

    # The fetch before the seek delivered 0..699; the fetch after it starts again at 699.
    before_seek = [view(o) for o in range(700)]
    after_seek = [view(o) for o in range(699, 1200)]
    stream = TakeEvents([before_seek[:500], before_seek[500:] + after_seek])
    await engine.agent()(stream)

    redis = Redis.from_url(redis_url)
    try:
        views = await redis.hget(keys.day(shop, occurred.date().isoformat()), "v")
        checkpoint = await redis.hget(keys.partition(topics.views, part), "offset")
    finally:
        await redis.aclose()
        await store.client.aclose()
    assert views == b"1200", f"1,200 views sent (offsets 0..1199, 699 delivered twice): {views!r}"
    assert checkpoint == b"1199"
