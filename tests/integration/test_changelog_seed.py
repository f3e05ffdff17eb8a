"""An upgrade to the state changelog: Redis holds state counted by a worker without it
(UPSELL_CHANGELOG=off), state that never changes afterwards. A worker with the changelog on
finds the changelog without a flush and seeds it with everything Redis holds (a walk in bounded
steps), so a Redis lost afterwards comes back whole (docs/state.md, "Changelog")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from stream.collector.write_keys import KeyKind, KeyRegistry
from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess
from stream.settings import Topics
from stream.state import keys
from stream.state.changelog_seed import DONE, SEED
from tests.support.api_totals import assert_http_totals
from tests.support.e2e import eventually, produce, worker_env
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items
from tests.support.expected_state import ExpectedState
from tests.support.redis_dump import differences, dump
from tests.support.restore_runs import (
    caught_up,
    recreate_event_topics,
    restore_by_hand,
    snapshots,
)


# make slow-ci and make chaos: 104 s at load 6, moved out of make test for its wall time
@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.timeout(300)
async def test_state_from_before_the_changelog_reaches_it_and_comes_back(
    broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    bootstrap, topics = broker.bootstrap, created_topics
    client = Redis.from_url(redis_url)
    registry = KeyRegistry(client, cache_s=0)
    sent = mixed_events(4_000, seed=54)
    expected = ExpectedState(SHOPS).add_all(sent)
    env = worker_env(bootstrap, redis_url, topics, "batch")
    old = WorkerProcess({**env, "UPSELL_CHANGELOG": "off"}, tmp_path, name="old")
    w = WorkerProcess(env, tmp_path, name="new")
    try:
        await produce(bootstrap, topics, settings_messages())
        old.start().wait_ready()
        write_key = await registry.add("shop-utc", KeyKind.SECRET)
        await produce(bootstrap, topics, snapshots())
        await produce(bootstrap, topics, as_items(sent))
        await assert_http_totals(old.url, expected, 120)
        old.stop()
        assert not await client.exists(keys.CHANGELOG_AT), "the old worker ran a changelog"
        before = await dump(client)
        assert any(":seen:" in k for k in before) and any(":ledger" in k for k in before)
        assert any(":subs" in k for k in before) and keys.SHOPS in before

        w.start().wait_ready()  # the upgrade: nothing changes from here on
        seeded = await eventually(lambda: client.get(SEED), lambda v: v == DONE, 60)
        assert seeded == DONE, f"the seed did not finish: {seeded!r}"
        await caught_up(client)
        marker = await eventually(
            lambda: client.get(keys.CHANGELOG_AT), lambda v: int(v or 0) > 0, 30
        )
        assert int(marker or 0) > 0, "no flush marker after the seed"
        assert not differences(before, await dump(client)), "the upgrade changed the state"
        w.stop()
        await client.flushall()
        await recreate_event_topics(bootstrap, topics)

        w.start().wait_ready()
        after = await dump(client)
        assert not differences(before, after), "\n".join(differences(before, after))
        found = await registry.lookup(write_key)
        assert found is not None and found.shop_id == "shop-utc"
        # by hand, after a rolling upgrade: the running worker walks again and flushes it all
        walks_before = _walks_done(w)
        said = restore_by_hand(env, "--seed")
        assert "seeding done" in said, said
        # the running flusher takes the walk up at once: the cursor may already have moved
        # (b'1713' was read once), so what proves the second walk is its line in the log
        walks = await eventually(lambda: asyncio.to_thread(_walks_done, w), walks_before.__lt__, 60)
        assert walks == walks_before + 1, f"the second walk did not finish: {walks} walks"
        assert await client.get(SEED) == DONE
        more = mixed_events(2_000, seed=55)
        expected.add_all(more)
        await produce(bootstrap, topics, as_items(more))
        await assert_http_totals(w.url, expected, 120)
    finally:
        for x in (old, w):
            x.stop()
        await client.aclose()


def _walks_done(w: WorkerProcess) -> int:
    """How many seeding walks the worker's log says ended."""
    return (w.log_dir / f"{w.name}.log").read_text(errors="replace").count("seeding done")
