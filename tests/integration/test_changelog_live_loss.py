"""Redis lost under a RUNNING worker: it is emptied (FLUSHALL) while the worker counts, and the
worker itself notices (no changelog marker), pauses counting, rebuilds Redis from the state
changelog and resumes from the restored checkpoints, without a restart. First with the stream
quiet and the event topics recreated empty (every key of the service equal to before, then the
new log counted exactly, re-sent upgrades not again), then with events flowing into the emptied
Redis (the apply script writes nothing until the restore is done: counted exactly)
(docs/state.md, "Changelog")."""

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
from tests.support.api_totals import assert_http_totals
from tests.support.e2e import eventually, produce, worker_env, workers
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items, wait_for_state
from tests.support.expected_state import ExpectedState
from tests.support.metrics import scrape, total
from tests.support.redis_dump import differences, dump
from tests.support.restore_runs import caught_up, recreate_event_topics, snapshots


async def restores(w: WorkerProcess) -> tuple[float, float]:
    """(times the worker found Redis lost, restores it finished)."""
    m = await asyncio.to_thread(scrape, w)
    return total(m, "upsell_redis_lost_total"), total(m, "upsell_restores_total")


@pytest.mark.timeout(420)
# Faust: make slow-ci and make chaos (90 s at load 6, moved out of make test for its wall time)
@pytest.mark.parametrize(
    "engine", ["batch", pytest.param("faust", marks=[pytest.mark.slow, pytest.mark.ci])]
)
async def test_a_redis_emptied_under_a_running_worker_is_restored_by_it(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    bootstrap, topics = broker.bootstrap, created_topics
    client = Redis.from_url(redis_url)
    registry = KeyRegistry(client, cache_s=0)
    sent = mixed_events(6_000, seed=44)
    expected = ExpectedState(SHOPS).add_all(sent)
    (w,) = workers(worker_env(bootstrap, redis_url, topics, engine), tmp_path, 1)
    try:
        await produce(bootstrap, topics, settings_messages())
        w.start().wait_ready()
        assert w.proc is not None
        pid = w.proc.pid
        write_key = await registry.add("shop-utc", KeyKind.SECRET)
        await produce(bootstrap, topics, snapshots())
        await produce(bootstrap, topics, as_items(sent))
        await assert_http_totals(w.url, expected, 180)
        await caught_up(client)
        before = await dump(client)
        assert any(":seen:" in k for k in before) and any(":ledger" in k for k in before)
        assert any(":subs" in k for k in before) and keys.SHOPS in before
        assert list(await restores(w)) == [0, 0], "a restore before Redis was lost"

        # 1. the stream quiet, the event topics emptied too (recreated): the worker finds the
        # emptied Redis and restores it, whole; then counts the new log from its start
        await client.flushall()
        await recreate_event_topics(bootstrap, topics)
        found = await eventually(lambda: restores(w), lambda n: n[1] >= 1, 120)
        assert list(found) == [1, 1], f"(lost, restores) = {found}: the worker did not restore"
        after = await dump(client)
        assert not differences(before, after), "\n".join(differences(before, after))
        assert await client.exists(keys.RESTORED)
        looked = await registry.lookup(write_key)
        assert looked is not None and looked.shop_id == "shop-utc"
        money = [s for s in sent if s.kind in ("upgrade", "downgrade") and s.valid][:30]
        more = mixed_events(1_500, seed=45)
        expected.add_all(more)
        await produce(bootstrap, topics, as_items([*money, *more]))
        await assert_http_totals(w.url, expected, 180)
        await wait_for_state(client, expected, 30)  # every day's counters, not only the totals

        # 2. events flowing into the emptied Redis (topics kept): nothing lost, none twice
        more = mixed_events(1_500, seed=46)
        expected.add_all(more)
        await caught_up(client)
        await client.flushall()
        await produce(bootstrap, topics, as_items([*money, *more]))
        await assert_http_totals(w.url, expected, 180)
        await wait_for_state(client, expected, 30)  # every day's counters, not only the totals
        found = await eventually(lambda: restores(w), lambda n: n[1] >= 2, 60)
        assert list(found) == [2, 2], f"(lost, restores) = {found}"
        await caught_up(client)  # the flusher works again after the restores
        assert w.alive() and w.proc.pid == pid, "the worker restarted"
    finally:
        w.stop()
        await client.aclose()
