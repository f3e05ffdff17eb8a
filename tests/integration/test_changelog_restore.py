"""Redis lost, nothing lost: a worker counts a stream, stops; Redis is emptied (FLUSHALL) and the
event topics are deleted and created again empty (as if retention had passed); a worker starts
and rebuilds Redis from the state changelog. Every counter, day, transition, ledger entry,
dedupe marker (with its TTL), sketch, snapshot, setting and write key is what it was, and the
events produced afterwards are counted exactly (docs/state.md, "Changelog")."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from stream.collector.keys import KeyKind, KeyRegistry
from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from stream.state import keys
from tests.event_factory import SHOPS, mixed_events, settings_messages
from tests.expected_state import ExpectedState
from tests.integration.api_totals import assert_http_totals
from tests.integration.e2e import produce, worker_env, workers
from tests.redis_dump import differences, dump


def snapshots() -> list[tuple[str, bytes, bytes]]:
    today = datetime.now(UTC).date().isoformat()
    return [
        (
            "subscribers",
            s.encode(),
            orjson.dumps({"shop_id": s, "date": today, "active_subscribers": 100 + i}),
        )
        for i, s in enumerate(SHOPS)
    ]


async def caught_up(client: Redis, timeout_s: float = 60.0) -> None:
    """Every change in Redis acknowledged by the changelog: no shop or global item marked."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shops = await client.hlen(keys.CHANGELOG_SHOPS)
        items = await client.hkeys(keys.CHANGELOG_GLOBAL)
        if shops == 0 and set(items) <= {b"#"}:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"changelog behind after {timeout_s}s: {shops} shops, {items!r:.300}")


async def recreate_event_topics(bootstrap: str, topics: Topics) -> None:
    """Delete the event topics and create them again, empty: their retention passed."""
    events = [*topics.counted, topics.subscriber_counts]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(events)
        deadline = time.monotonic() + 30
        while set(events) & set(await admin.list_topics()):
            assert time.monotonic() < deadline, "the broker did not delete the topics"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await ensure_topics(bootstrap, topics, partitions=4)


async def count_stop_wipe(
    bootstrap: str, topics: Topics, client: Redis, w: WorkerProcess, expected: ExpectedState
) -> dict[str, object]:
    """The counted stream's state once the changelog caught up; then stop, wipe, recreate."""
    await assert_http_totals(w.url, expected, 120)
    await caught_up(client)
    before = await dump(client)
    w.stop()
    await client.flushall()
    await recreate_event_topics(bootstrap, topics)
    return before


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_an_emptied_redis_comes_back_whole_from_the_changelog(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    bootstrap, topics = broker.bootstrap, created_topics
    client = Redis.from_url(redis_url)
    registry = KeyRegistry(client, cache_s=0)
    sent = mixed_events(6_000, seed=34)
    expected = ExpectedState(SHOPS).add_all(sent)
    (w,) = workers(worker_env(bootstrap, redis_url, topics, engine), tmp_path, 1)
    try:
        await produce(bootstrap, topics, settings_messages())
        w.start().wait_ready()
        write_key = await registry.add("shop-utc", KeyKind.SECRET)
        await produce(bootstrap, topics, snapshots())
        await produce(bootstrap, topics, [(s.kind, s.key, s.value) for s in sent])
        before = await count_stop_wipe(bootstrap, topics, client, w, expected)
        assert any(":seen:" in k for k in before) and any(":ledger" in k for k in before)
        assert any(":subs" in k for k in before) and keys.SHOPS in before

        w.start().wait_ready()
        after = await dump(client)
        assert not differences(before, after), "\n".join(differences(before, after))
        assert await client.exists(keys.RESTORED)
        found = await registry.lookup(write_key)
        assert found is not None and found.shop_id == "shop-utc"

        # after the restore: new events counted once, old upgrades re-sent not at all
        money = [s for s in sent if s.kind in ("upgrade", "downgrade") and s.valid][:30]
        more = mixed_events(3_000, seed=35)
        expected.add_all(more)
        await produce(bootstrap, topics, [(s.kind, s.key, s.value) for s in [*money, *more]])
        await assert_http_totals(w.url, expected, 120)
    finally:
        w.stop()
        await client.aclose()
