"""Chaos: workers killed, Redis killed, the broker restarted, while events flow.

The smoke tests run in ``make test``; the long ones (``slow``) in ``make chaos`` and print their
figures. Every test ends comparing Redis with the reference aggregator: nothing lost, nothing
doubled.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import WorkerProcess, http_get
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from stream.state import keys
from tests.support import state_snapshot
from tests.support.dates import an_hour_ago
from tests.support.e2e import eventually, produce, produce_paced, worker_env, workers
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.expected_state import ExpectedState, Sent

pytestmark = [pytest.mark.integration]


def items(sent: list[Sent]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(s.kind, s.key, s.value) for s in sent]


async def assert_exact(redis: Redis, expected: ExpectedState, timeout_s: float) -> None:
    want = expected.counters()
    got = await eventually(lambda: state_snapshot.counters(redis), lambda c: c == want, timeout_s)
    assert got == want, "\n".join(state_snapshot.diff(want, got))
    await asyncio.sleep(2)
    assert await state_snapshot.counters(redis) == want, "moved after matching: counted twice"


@asynccontextmanager
async def counting_run(
    broker: EmbeddedBroker,
    redis_url: str,
    topics: Topics,
    tmp_path: Path,
    *,
    n_workers: int,
    events: int,
    seed: int,
    engine: str = "batch",
) -> AsyncIterator[tuple[list[Sent], ExpectedState, list[WorkerProcess], Redis]]:
    """Shop settings produced, ``events`` generated with their reference state, ``n_workers``
    workers of ``engine`` (not started) and a Redis client; all stopped and closed after."""
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(events, seed=seed)
    expected = ExpectedState(SHOPS).add_all(sent)
    pool = workers(
        worker_env(broker.bootstrap, redis_url, topics, engine, UPSELL_BATCH_MAX_EVENTS="2000"),
        tmp_path,
        n_workers,
    )
    redis = Redis.from_url(redis_url)
    try:
        yield sent, expected, pool, redis
    finally:
        await redis.aclose()
        for w in pool:
            w.stop()


@pytest.mark.timeout(240)
async def test_smoke_one_kill_9_and_one_redis_restart(
    broker: EmbeddedBroker,
    redis_server: EmbeddedRedis,
    redis_url: str,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    run = counting_run(broker, redis_url, topics, tmp_path, n_workers=2, events=60_000, seed=101)
    async with run as (sent, expected, (w1, w2), redis):
        for w in (w1, w2):
            w.start()
        w1.wait_ready()
        w2.wait_ready()
        producing = asyncio.create_task(produce(broker.bootstrap, topics, items(sent)))
        await asyncio.sleep(1.0)
        w1.kill()  # its partitions move to w2 after the session timeout
        await asyncio.sleep(1.0)
        redis_server.kill()
        await asyncio.sleep(1.5)
        redis_server.start()
        w1.start().wait_ready(90)
        await producing
        await assert_exact(redis, expected, 180)
        assert w2.alive() and w2.starts == 1


@pytest.mark.timeout(240)
@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_broker_restart_is_survived(engine: str, tmp_path: Path, redis_url: str) -> None:
    """The embedded broker keeps nothing: after a restart every topic is gone and offsets start
    at 0 again, far below the checkpoints in Redis. Workers must not crash, must report counting
    not ready while the broker is away (the API stays ready and answers from Redis), and must
    count the new log from its start."""
    broker = EmbeddedBroker(tmp_path / "own-broker")
    await asyncio.to_thread(broker.start)  # start() runs its own event loop
    topics = Topics("brk.")
    await ensure_topics(broker.bootstrap, topics, partitions=4)
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, engine), tmp_path, 1)
    redis = Redis.from_url(redis_url)
    occurred_at, day = an_hour_ago()
    view = {
        "shop_id": "s1",
        "occurred_at": occurred_at,
        "group_id": "g",
        "variation_id": "a",
    }
    try:
        w.start().wait_ready()
        await produce(
            broker.bootstrap,
            topics,
            [("view", b"s1", orjson.dumps({**view, "event_id": f"a{i}"})) for i in range(3000)],
        )
        key = keys.day("s1", day)
        got = await eventually(lambda: redis.hget(key, "v"), lambda v: v == b"3000", 60)
        assert got == b"3000", f"{got!r} of 3000 views counted before the broker restart"
        broker.stop()
        saw_not_ready = False
        for _ in range(20):
            status, _body = http_get(f"{w.url}/readyz/counting")
            saw_not_ready = saw_not_ready or status == 503
            if saw_not_ready:
                break
            await asyncio.sleep(0.25)
        assert saw_not_ready, "/readyz/counting not 503 within 5 s of the broker stopping"
        # The API reads Redis only: with the broker gone it stays ready and keeps answering.
        status, body = http_get(f"{w.url}/readyz")
        assert status == 200, f"/readyz answered {status} with the broker down: {body!r}"
        status, body = http_get(
            f"{w.url}/v1/shops/s1/overview?period=custom&from={day}&to={day}", timeout=5
        )
        assert status == 200, f"overview answered {status} with the broker down: {body[:300]!r}"
        views = orjson.loads(body)["metrics"]["banner_views"]
        assert views == 3000, f"overview says {views} views with the broker down, 3000 counted"
        await asyncio.to_thread(broker.start)  # same port, empty
        assert w.alive()

        async def topics_back() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            try:
                return topics.views in await admin.list_topics()
            finally:
                await admin.close()

        assert await eventually(topics_back, bool, 60), "the worker did not re-create topics"
        w.wait_ready(60)
        await produce(
            broker.bootstrap,
            topics,
            [("view", b"s1", orjson.dumps({**view, "event_id": f"b{i}"})) for i in range(500)],
        )
        got = await eventually(lambda: redis.hget(key, "v"), lambda v: v == b"3500", 90)
        assert got == b"3500", f"{got!r} of 3500 views counted after the broker restart"
        assert w.alive() and w.starts == 1
    finally:
        await redis.aclose()
        w.stop()
        broker.stop()


TAKEOVER_LIMIT_S = 120.0


def is_ready(w: WorkerProcess) -> bool:
    try:
        return http_get(f"{w.url}/readyz/counting", timeout=1.0)[0] == 200
    except OSError:
        return False


async def seconds_until_reclaimed(redis: Redis, before: dict[bytes, int], since: float) -> float:
    """Takeover time: from the kill until every partition was claimed again (the group noticed
    the dead member after the session timeout, rebalanced, and the owners resumed from Redis)."""
    while time.monotonic() - since < TAKEOVER_LIMIT_S:
        now = await state_snapshot.generations(redis)
        if all(now.get(k, 0) > g for k, g in before.items()):
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - since


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_kill_storm_with_workers_joining_and_leaving(
    broker: EmbeddedBroker,
    redis_url: str,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    rng = random.Random(9)
    kills, joins = 0, 0
    measuring: list[asyncio.Task[float]] = []
    run = counting_run(
        broker, redis_url, created_topics, tmp_path, n_workers=3, events=300_000, seed=202
    )
    async with run as (sent, expected, pool, redis):
        topics = created_topics
        pool[0].start().wait_ready()
        producing = asyncio.create_task(produce_paced(broker.bootstrap, topics, items(sent), 3_000))
        while not producing.done():
            await asyncio.sleep(rng.uniform(2, 5))
            alive = [w for w in pool if w.alive()]
            idle = [w for w in pool if not w.alive()]
            if idle and (len(alive) < 2 or rng.random() < 0.5):
                rng.choice(idle).start()  # joins while the others work; not waited for
                joins += 1
            ready = [w for w in alive if await asyncio.to_thread(is_ready, w)]
            if ready and (len(alive) > 1 or rng.random() < 0.3):
                victim = rng.choice(ready)
                before = await state_snapshot.generations(redis)
                killed_at = time.monotonic()
                victim.kill()
                kills += 1
                if not any(w.alive() for w in pool):
                    rng.choice([w for w in pool if w is not victim]).start()
                    joins += 1
                measuring.append(
                    asyncio.create_task(seconds_until_reclaimed(redis, before, killed_at))
                )
        await producing
        if not any(w.alive() for w in pool):
            pool[0].start()
        takeovers = await asyncio.gather(*measuring)
        await assert_exact(redis, expected, 300)
        print(
            f"\nkill storm: {len(sent):,} events at ~3k/s, {kills} kill -9, {joins} joins, "
            f"takeover seconds (kill -> every partition claimed again): "
            f"{', '.join(f'{t:.1f}' for t in takeovers)}; nothing lost, nothing doubled"
        )
    assert kills >= 5
    assert all(t < TAKEOVER_LIMIT_S for t in takeovers), takeovers


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_two_faust_workers_killed_in_turn(
    broker: EmbeddedBroker,
    redis_url: str,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    """The Faust engine's takeover, longer than tests/integration/test_faust_takeover.py: the
    two workers are killed with kill -9 in turn; the other takes over after the session timeout
    (6 s), then the killed one comes back and takes half again."""
    rng = random.Random(13)
    topics = created_topics
    run = counting_run(
        broker, redis_url, topics, tmp_path, n_workers=2, events=60_000, seed=404, engine="faust"
    )
    async with run as (sent, expected, pool, redis):
        for w in pool:
            w.start()
        for w in pool:
            w.wait_ready()
        producing = asyncio.create_task(produce_paced(broker.bootstrap, topics, items(sent), 3_000))
        for kill in range(3):  # while events flow, or while the workers catch up
            await asyncio.sleep(rng.uniform(2, 4))
            victim = pool[kill % 2]
            victim.kill()
            await asyncio.sleep(rng.uniform(7, 9))
            victim.start()
        await producing
        await assert_exact(redis, expected, 300)
        print(
            f"\nfaust takeovers: {len(sent):,} events at ~3k/s, 2 Faust workers, 3 kill -9 in "
            "turn, each back after 7-9 s; nothing lost, nothing doubled"
        )


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_redis_killed_three_times(
    broker: EmbeddedBroker,
    redis_server: EmbeddedRedis,
    redis_url: str,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    run = counting_run(broker, redis_url, topics, tmp_path, n_workers=1, events=150_000, seed=303)
    async with run as (sent, expected, (w,), redis):
        w.start().wait_ready()
        producing = asyncio.create_task(produce(broker.bootstrap, topics, items(sent)))
        for _ in range(3):
            await asyncio.sleep(1.5)
            redis_server.kill()
            await asyncio.sleep(1.0)
            redis_server.start()
        await producing
        await assert_exact(redis, expected, 300)
        assert w.alive() and w.starts == 1
        print(
            f"\nredis chaos: {len(sent):,} events, 3 Redis kill -9 + restarts (AOF everysec), "
            "worker never restarted; nothing lost, nothing doubled"
        )
