"""Redis lost, nothing lost: a worker counts a stream, stops; Redis is emptied (FLUSHALL) and the
event topics are deleted and created again empty (as if retention had passed); a worker starts
and rebuilds Redis from the state changelog. Every counter, day, transition, ledger entry,
dedupe marker (with its TTL), sketch, snapshot, setting and write key is what it was, and the
events produced afterwards are counted exactly (docs/state.md, "Changelog")."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from stream.collector.write_keys import KeyKind, KeyRegistry
from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from stream.state import keys
from tests.support.api_totals import assert_http_totals
from tests.support.e2e import produce, worker_env, workers
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items
from tests.support.expected_state import ExpectedState
from tests.support.redis_dump import differences, dump
from tests.support.restore_runs import count_stop_wipe, restore_by_hand, snapshots


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
        await produce(bootstrap, topics, as_items(sent))
        before = await count_stop_wipe(bootstrap, topics, client, w, expected)
        assert any(":seen:" in k for k in before) and any(":ledger" in k for k in before)
        assert any(":subs" in k for k in before) and keys.SHOPS in before
        said = restore_by_hand(w.env, "--dry-run")
        assert "Redis holds no changelog marker" in said and "would restore" in said, said
        assert not await client.exists(keys.CHANGELOG_AT), "--dry-run wrote"

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
        await produce(bootstrap, topics, as_items([*money, *more]))
        await assert_http_totals(w.url, expected, 120)
    finally:
        w.stop()
        await client.aclose()
