"""Exactly once through the Faust engine's own batches, against a real redis-server.

Faust's fetcher keeps a partition's last delivered offset and passes on every fetched message at
or above it. After a seek (the engine's seek to the Redis checkpoint, Faust's own seek to its
committed offset, racing each other on a takeover) it therefore delivers that last message a
second time, and both copies can land in one ``take_events`` batch (docs/state.md, "Exactly
once"). The agent is driven here with such a batch, as Faust hands it over.

A fence answered for a batch applied under an older claim, while this same worker claimed the
partition again (a rebalance that gave it back), must not stop the engine counting it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import faust
import orjson
import pytest
from redis.asyncio import Redis

from stream.devtools.offline_ingestor import offline_ingestor
from stream.engines.faust.agents import FaustCounting
from stream.ingest.ingestor import Ingestor
from stream.settings import Settings, Topics
from stream.state import keys
from stream.state.batch import PartitionBatch
from stream.state.health import StoreHealth
from stream.state.redis import RedisStore, connect
from stream.state.store import ApplyResult
from stream.telemetry import Telemetry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class Message:
    """What the engine reads of a Faust ``Message``."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp: float  # seconds, as Faust gives it
    acked: bool = False  # set by the engine for a message it never acknowledges


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


@dataclass
class Rig:
    engine: FaustCounting
    ingestor: Ingestor
    store: RedisStore
    view: Callable[[int], Message]
    day: str


@pytest.fixture
async def rig(redis_url: str, topics: Topics) -> AsyncIterator[Rig]:
    """The engine on ``shop-utc``'s views partition 2 (claimed), and a view maker by offset."""
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

    yield Rig(engine, ingestor, store, view, keys.day(shop, occurred.date().isoformat()))
    await store.client.aclose()


async def stored(redis_url: str, *keys_fields: tuple[str, str]) -> list[bytes | str | None]:
    redis = Redis.from_url(redis_url)
    try:
        return [await redis.hget(key, field) for key, field in keys_fields]
    finally:
        await redis.aclose()


async def test_a_view_redelivered_after_a_seek_in_the_same_batch_counts_once(
    rig: Rig, redis_url: str, topics: Topics
) -> None:
    # The fetch before the seek delivered 0..699; the fetch after it starts again at 699.
    before_seek = [rig.view(o) for o in range(700)]
    after_seek = [rig.view(o) for o in range(699, 1200)]
    stream = TakeEvents([before_seek[:500], before_seek[500:] + after_seek])
    await rig.engine.agent()(stream)

    views, checkpoint = await stored(
        redis_url, (rig.day, "v"), (keys.partition(topics.views, 2), "offset")
    )
    assert views == b"1200", f"1,200 views sent (offsets 0..1199, 699 delivered twice): {views!r}"
    assert checkpoint == b"1199"


async def test_a_stale_fence_leaves_a_partition_claimed_again_counting(
    rig: Rig, redis_url: str, topics: Topics
) -> None:
    key = (topics.views, 2)
    apply = rig.store.apply
    reclaimed: list[int] = []

    async def apply_after_a_reclaim(batch: PartitionBatch) -> ApplyResult:
        # A rebalance gives the partition back to this worker while the batch is on its way:
        # the new claim fences the batch's older generation.
        if not reclaimed:
            resume = await rig.ingestor.assign(*key)
            rig.engine.resume[key] = resume
            reclaimed.append(resume)
        return await apply(batch)

    rig.store.apply = apply_after_a_reclaim  # type: ignore[method-assign]
    first = [rig.view(o) for o in range(100)]
    await rig.engine.agent()(TakeEvents([first]))
    assert reclaimed == [0], f"the partition was claimed again at {reclaimed}"
    assert key in rig.engine.resume, "the fence of the older claim dropped the partition"
    assert all(m.acked for m in first), "a fenced batch must never be acknowledged to Faust"
    # Faust reads again from the new claim's resume offset (0), and on.
    await rig.engine.agent()(TakeEvents([[rig.view(o) for o in range(150)]]))
    views, checkpoint = await stored(
        redis_url, (rig.day, "v"), (keys.partition(topics.views, 2), "offset")
    )
    assert views == b"150", f"150 views sent, the first 100 fenced once then read again: {views!r}"
    assert checkpoint == b"149"
