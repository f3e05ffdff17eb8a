"""Exactly once, end to end: real broker, real redis-server, workers as subprocesses.

Every test compares what the workers wrote into Redis with the reference aggregator over the
list of messages the test produced.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess
from stream.settings import Topics
from stream.state import keys
from tests.support import state_snapshot
from tests.support.brokers import Broker
from tests.support.dates import an_hour_ago, iso_instant
from tests.support.e2e import (
    eventually,
    produce,
    produce_until,
    read_topic,
    worker_env,
    workers,
    written,
)
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items, settle, wait_for_state
from tests.support.expected_state import ExpectedState
from tests.support.metrics import scrape, total

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ENGINES = ["batch", "faust"]

# Events per run by engine. Faust's agents count ~10x slower per event (shared/FACTS.md), so
# equal volumes cost Faust ten times the time for the same proof: each fault below lands while
# events flow with either volume (the kill test paces its production across the kills).
VOLUME = {
    "kill": {"batch": 60_000, "faust": 12_000},
    "rebalance": {"batch": 60_000, "faust": 20_000},
    "replay": {"batch": 20_000, "faust": 8_000},
}
# The batch engine's kill test splits each fetch of 2,000 into applies of at most 500, one apply
# script in Redis at a time (the settings that bound a read's wait behind counting, README
# "Performance"): the kills land between the applies of one fetch too.
SPLIT = {"UPSELL_APPLY_MAX_EVENTS": "500", "UPSELL_APPLY_CALLS_IN_FLIGHT": "1"}
# The kill test paces its production over FLOW_S (or until the kills are done), at most 5,000
# events ahead of what the worker wrote: a backlog at every kill, at any counting speed.
FLOW_S = 60.0


def held(w: WorkerProcess) -> int:
    """How many counted partitions ``w`` holds, by its own gauge."""
    return int(total(scrape(w), "upsell_assigned_partitions"))


async def claims_rising(redis: Redis, before: dict[bytes, int]) -> int:
    """How many partition checkpoints were claimed again (a higher generation) since ``before``."""
    now = await state_snapshot.generations(redis)
    return sum(1 for key, gen in before.items() if now.get(key, 0) > gen)


@pytest.fixture
async def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_state_matches_reference_after_50k_mixed_events(
    broker: EmbeddedBroker,
    redis_url: str,
    redis_client: Redis,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(50_000, seed=11)
    expected = ExpectedState(SHOPS).add_all(sent)
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, "batch"), tmp_path, 1)
    try:
        w.start().wait_ready()
        await produce(broker.bootstrap, topics, as_items(sent))
        await wait_for_state(redis_client, expected, 90)
        letters = await read_topic(broker.bootstrap, topics.dead_letters)
        assert len(letters) == sum(1 for s in sent if not s.valid)
        reasons = {dict(r.headers)["reason"].decode() for r in letters}
        assert reasons == {"invalid_json", "missing_field:variation_id", "future_timestamp"}
    finally:
        w.stop()


@pytest.mark.parametrize("engine", ENGINES)
async def test_kill_9_three_times_while_events_flow(
    engine: str,
    broker: Broker,
    redis_url: str,
    redis_client: Redis,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(VOLUME["kill"][engine], seed=22)
    expected = ExpectedState(SHOPS).add_all(sent)
    split = SPLIT if engine == "batch" else {}
    env = worker_env(broker.bootstrap, redis_url, topics, engine, UPSELL_BATCH_MAX_EVENTS="2000")
    (w,) = workers({**env, **split}, tmp_path, 1)
    rng = random.Random(5)
    try:
        w.start().wait_ready()
        killed = asyncio.Event()
        producing = asyncio.create_task(
            produce_until(
                broker.bootstrap,
                topics,
                as_items(sent),
                killed,
                len(sent) / FLOW_S,
                lambda: written(redis_client),
                lead=5_000,
            )
        )
        for _ in range(3):
            await asyncio.sleep(rng.uniform(0.5, 2.5))
            assert not producing.done(), "production ended before a kill: events must flow"
            w.kill()
            await asyncio.to_thread(w.start().wait_ready)  # events keep flowing meanwhile
        killed.set()
        await producing
        await wait_for_state(redis_client, expected, 180)
        await settle(redis_client, expected)
        applied = scrape(w)  # the last process's batches: at most 500 events each when split
    finally:
        w.stop()
    assert w.starts == 4
    batches = total(applied, "upsell_batch_events_count")
    assert batches > 0
    if split:
        assert total(applied, "upsell_batch_events_bucket", le="500.0") == batches, applied


@pytest.mark.parametrize("engine", ENGINES)
async def test_rebalance_between_two_workers(
    engine: str,
    broker: Broker,
    redis_url: str,
    redis_client: Redis,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(VOLUME["rebalance"][engine], seed=33)
    expected = ExpectedState(SHOPS).add_all(sent)
    w1, w2 = workers(
        worker_env(broker.bootstrap, redis_url, topics, engine, UPSELL_BATCH_MAX_EVENTS="2000"),
        tmp_path,
        2,
    )
    try:
        w1.start()
        w2.start()
        w1.wait_ready()
        w2.wait_ready()
        items = as_items(sent)
        third = len(items) // 3
        await produce(broker.bootstrap, topics, items[:third])

        async def holdings() -> tuple[int, int]:
            return held(w1), held(w2)

        shared = await eventually(holdings, lambda h: min(h) > 0 and sum(h) == 16, 60)
        assert min(shared) > 0 and sum(shared) == 16, f"w1, w2 hold {shared} of 16 partitions"
        before = await state_snapshot.generations(redis_client)
        assert len(before) == 16, f"{len(before)} of 16 partitions claimed"
        w2.stop()  # leaves the group mid-stream: w1 takes over its partitions
        producing = asyncio.create_task(produce(broker.bootstrap, topics, items[third : 2 * third]))

        async def w1_took_over() -> tuple[int, int]:
            return held(w1), await claims_rising(redis_client, before)

        took = await eventually(w1_took_over, lambda t: t[0] == 16 and t[1] >= shared[1], 60)
        assert took[0] == 16 and took[1] >= shared[1], (
            f"after w2 left, w1 holds {took[0]} of 16 partitions and {took[1]} were claimed "
            f"again; w2 had held {shared[1]}"
        )
        await producing
        before = await state_snapshot.generations(redis_client)
        w2.start().wait_ready()  # and back: partitions move again
        producing = asyncio.create_task(produce(broker.bootstrap, topics, items[2 * third :]))

        async def w2_took_back() -> tuple[int, int]:
            return held(w2), await claims_rising(redis_client, before)

        back = await eventually(w2_took_back, lambda t: 0 < t[0] <= t[1], 60)
        assert 0 < back[0] <= back[1], (
            f"after w2 came back it holds {back[0]} partitions, {back[1]} were claimed again"
        )
        await producing
        await wait_for_state(redis_client, expected, 180)
        await settle(redis_client, expected)
    finally:
        w1.stop()
        w2.stop()


@pytest.mark.parametrize("engine", ENGINES)
async def test_replay_from_offset_zero_changes_nothing(
    engine: str,
    broker: EmbeddedBroker,
    redis_url: str,
    redis_client: Redis,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(VOLUME["replay"][engine], seed=44)
    expected = ExpectedState(SHOPS).add_all(sent)
    env = worker_env(broker.bootstrap, redis_url, topics, engine)
    (w,) = workers(env, tmp_path, 1)
    try:
        w.start().wait_ready()
        await produce(broker.bootstrap, topics, as_items(sent))
        await wait_for_state(redis_client, expected, 120)
    finally:
        w.stop()
    # Replay: a new consumer group (Kafka offsets from 0) AND the checkpoints in Redis wiped,
    # so every message is read again; per-shop progress must stop every one of them.
    checkpoints = [k async for k in redis_client.scan_iter(match="us:part:*")]
    assert checkpoints
    await redis_client.delete(*checkpoints)
    replay_env = {**env, "UPSELL_GROUP_ID": env["UPSELL_GROUP_ID"] + "-replay"}
    (r,) = workers(replay_env, tmp_path, 1)
    ends: dict[tuple[str, int], int] = {}
    try:
        r.start().wait_ready()
        for topic in topics.counted:
            for rec in await read_topic(broker.bootstrap, topic):
                ends[(topic, rec.partition)] = max(ends.get((topic, rec.partition), -1), rec.offset)

        async def replayed() -> bool:
            for (topic, part), end in ends.items():
                raw = await redis_client.hget(f"us:part:{{{topic}:{part}}}", "offset")
                if raw is None or int(raw) < end:
                    return False
            return True

        assert await eventually(replayed, bool, 120), "the replay did not reach the end"
        await settle(redis_client, expected, 1.0)
    finally:
        r.stop()


@pytest.mark.parametrize("engine", ENGINES)
async def test_resent_upgrade_on_three_partitions_counts_once(
    engine: str,
    broker: EmbeddedBroker,
    redis_url: str,
    redis_client: Redis,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    occurred_at, utc_day = an_hour_ago()
    upgrade = orjson.dumps(
        {
            "event_id": "up-1",
            "shop_id": "shop-utc",
            "occurred_at": occurred_at,
            "subscriber_id": "sub-1",
            "order_id": "o-1",
            "group_id": "g",
            "variation_id": "a",
            "from": {"product_ids": ["p"], "selling_plan_id": "basic", "mrr_minor": 1000},
            "to": {"product_ids": ["q"], "selling_plan_id": "pro", "mrr_minor": 3000},
            "revenue_minor": 2000,
            "currency": "USD",
        }
    )
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, engine), tmp_path, 1)
    day = keys.day("shop-utc", utc_day)
    try:
        w.start().wait_ready()
        for partition in (0, 1, 2):
            await produce(broker.bootstrap, topics, [("upgrade", b"shop-utc", upgrade)], partition)
            # each copy applied (its partition's checkpoint at offset 0) before the next is sent
            checkpoint = f"us:part:{{{topics.upgrades}:{partition}}}"
            offset = await eventually(
                partial(redis_client.hget, checkpoint, "offset"), lambda v: v == b"0", 30
            )
            assert offset == b"0", f"the copy on partition {partition} not applied: {offset!r}"
        assert await redis_client.hgetall(day) == {b"u": b"1", b"r:USD": b"2000", b"e:USD": b"2000"}
        assert await redis_client.zcard("us:{shop-utc}:ledger") == 1
    finally:
        w.stop()


async def test_bad_messages_dead_lettered_good_ones_counted(
    broker: EmbeddedBroker,
    redis_url: str,
    redis_client: Redis,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    occurred_at, utc_day = an_hour_ago()
    now = datetime.now(UTC)
    ok = {
        "event_id": "ok",
        "shop_id": "s1",
        "occurred_at": occurred_at,
        "group_id": "g",
        "variation_id": "a",
    }
    in_30_days = iso_instant(now + timedelta(days=30))
    past_retention = iso_instant(now - timedelta(days=3000))  # the worker keeps 800 days
    bad: dict[str, tuple[bytes | None, bytes]] = {
        "invalid_json": (b"s1", b"{nope"),
        "missing_field:group_id": (
            b"s1",
            orjson.dumps({k: v for k, v in ok.items() if k != "group_id"}),
        ),
        "bad_type:occurred_at": (b"s1", orjson.dumps({**ok, "occurred_at": 5})),
        "future_timestamp": (b"s1", orjson.dumps({**ok, "occurred_at": in_30_days})),
        "too_old": (b"s1", orjson.dumps({**ok, "occurred_at": past_retention})),
        "key_mismatch": (b"other", orjson.dumps(ok)),
        "too_large": (b"s1", orjson.dumps({**ok, "pad": "x" * 70_000})),
        "bad_type:event": (b"s1", b"[1, 2]"),
    }
    items: list[tuple[str, bytes | None, bytes | None]] = []
    for i, (key, value) in enumerate(bad.values()):
        items.append(("view", b"s1", orjson.dumps({**ok, "event_id": f"good-{i}"})))
        items.append(("view", key, value))
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, "batch"), tmp_path, 1)
    try:
        w.start().wait_ready()
        await produce(broker.bootstrap, topics, items, partition=0)
        got = await eventually(
            lambda: redis_client.hget(keys.day("s1", utc_day), "v"),
            lambda v: v == str(len(bad)).encode(),
            60,
        )
        assert got == str(len(bad)).encode(), f"{got!r} of {len(bad)} good views counted"

        letters = await eventually(
            lambda: read_topic(broker.bootstrap, topics.dead_letters),
            lambda rs: len(rs) >= len(bad),
            30,
        )
        by_reason = {dict(r.headers)["reason"].decode(): r for r in letters}
        assert set(by_reason) == set(bad)
        for reason, (key, value) in bad.items():
            record = by_reason[reason]
            doc = orjson.loads(record.value)
            assert doc["reason"] == reason and record.key == key
            assert doc["source"]["topic"] == topics.views
            # the original's first 16 KiB, its size and hash (the too-large one is cut)
            kept = base64.b64decode(doc["original_b64"])
            assert kept == value[: len(kept)] and len(kept) == min(len(value), 16 * 1024), reason
            assert doc["truncated"] is (len(value) > 16 * 1024), reason
            assert doc["original_bytes"] == len(value), reason
            assert doc["original_sha256"] == hashlib.sha256(value).hexdigest(), reason
        assert w.alive()
    finally:
        w.stop()
