"""A worker counting while its Redis is sent back in time, again and again: the short runs in
``make test`` (tests/integration/test_redis_rewind.py) and the long ones in ``make chaos``
(tests/chaos/test_rewind_chaos.py) are this one run with other sizes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from stream.devtools.redis_cluster import LocalRedisCluster
from stream.devtools.workers import WorkerProcess
from stream.settings import Topics
from tests.support.api_totals import assert_http_totals
from tests.support.e2e import produce, produce_until, wait_written, worker_env, workers, written
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.expected_state import ExpectedState
from tests.support.metrics import scrape, total
from tests.support.older_redis import OlderRedis


@dataclass
class RewindFigures:
    engine: str
    events: int
    rewinds: int
    writes_lost: int = 0  # records the worker had written after each snapshot, summed
    rewinds_counted: float = 0  # upsell_redis_rewinds_total at the end
    seconds_to_exact: float = 0.0  # from the end of production to exact totals over HTTP

    def line(self) -> str:
        return (
            f"redis rewinds ({self.engine}): {self.events:,} events, Redis sent back "
            f"{self.rewinds} times mid-stream, "
            f"{self.writes_lost:,} records' writes lost and re-read, "
            f"{self.rewinds_counted:g} partition repairs (upsell_redis_rewinds_total), exact "
            "over HTTP "
            f"{self.seconds_to_exact:.1f} s after the last event was produced, worker never "
            "restarted; nothing lost, nothing doubled"
        )


async def exact_after(
    producing: asyncio.Task[None],
    done: asyncio.Event,
    w: WorkerProcess,
    expected: ExpectedState,
    figures: RewindFigures,
) -> None:
    """The rest of the stream at once, then the totals over HTTP exact, with no restart."""
    assert not producing.done(), "the stream ended before the last rewind: produce slower"
    done.set()
    await producing
    produced_at = time.monotonic()
    await assert_http_totals(w.url, expected, 150 + figures.events / 1_000)
    figures.seconds_to_exact = time.monotonic() - produced_at
    assert w.alive() and w.starts == 1, "the worker must repair without a restart"
    figures.rewinds_counted = total(scrape(w), "upsell_redis_rewinds_total")


async def rewound_run(
    engine: str,
    bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    *,
    events: int,
    rewinds: int,
    seed: int = 77,
) -> RewindFigures:
    """``events`` flow into one worker of ``engine`` while its Redis goes back ``rewinds``
    times (alternately in place and by a restart from the older RDB), each time losing the
    writes of some 4,000 records; the totals over HTTP come out exact, with no restart."""
    server = OlderRedis(tmp_path).start()
    await produce(bootstrap, topics, settings_messages())
    sent = mixed_events(events, seed=seed)
    expected = ExpectedState(SHOPS).add_all(sent)
    env = worker_env(
        bootstrap,
        server.url,
        topics,
        engine,
        UPSELL_BATCH_MAX_EVENTS="1000",
        UPSELL_APPLY_SHOPS_PER_CALL="2",  # a batch in several calls: a rewind between them
    )
    (w,) = workers(env, tmp_path, 1)
    # the test's own client rides out the restarts from an RDB (retries for up to ~30 s)
    redis = Redis.from_url(server.url, retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 40))
    figures = RewindFigures(engine, events, rewinds)
    try:
        w.start().wait_ready()
        items = [(s.kind, s.key, s.value) for s in sent]
        done = asyncio.Event()
        producing = asyncio.create_task(
            produce_until(bootstrap, topics, items, done, 2_000, lambda: written(redis))
        )
        for i in range(rewinds):
            await wait_written(redis, await written(redis) + 2_000, f"before snapshot {i + 1}")
            await asyncio.to_thread(server.snapshot)
            at_snapshot = await written(redis)
            # the worker writes more after the snapshot: those writes are what Redis loses
            lost = await wait_written(redis, at_snapshot + 4_000, f"after snapshot {i + 1}")
            rewind = server.reload if i % 2 == 0 else server.restart_from
            await asyncio.to_thread(rewind, server.snapshots_taken[-1])
            figures.writes_lost += lost - at_snapshot
        await exact_after(producing, done, w, expected, figures)
        assert figures.rewinds_counted >= rewinds, figures.line()
    finally:
        w.stop()
        await redis.aclose()
        server.stop()
    print("\n" + figures.line())
    return figures


# Cluster runs: 9 shops spread over the 3 primaries' slots
CLUSTER_SHOPS = {f"shop-{i}": ("UTC", "America/New_York", "Asia/Kolkata")[i % 3] for i in range(9)}


async def older_primaries_run(
    engine: str,
    bootstrap: str,
    cluster: LocalRedisCluster,
    topics: Topics,
    tmp_path: Path,
    *,
    events: int,
    primaries: list[int],
    seed: int = 88,
) -> RewindFigures:
    """``events`` flow into one worker of ``engine`` on ``cluster`` while each port in
    ``primaries`` in turn loses its last writes (restored from its own older snapshot) and the
    other primaries, which may hold the partition checkpoints, keep theirs. The totals over
    HTTP come out exact, with no restart."""
    client = RedisCluster.from_url(cluster.url)
    await client.flushall()
    await produce(bootstrap, topics, settings_messages(CLUSTER_SHOPS))
    sent = mixed_events(events, seed=seed, shops=CLUSTER_SHOPS)
    expected = ExpectedState(CLUSTER_SHOPS).add_all(sent)
    env = worker_env(
        bootstrap,
        cluster.url,
        topics,
        engine,
        UPSELL_REDIS_CLUSTER="on",
        UPSELL_BATCH_MAX_EVENTS="1000",
    )
    (w,) = workers(env, tmp_path, 1)
    figures = RewindFigures(f"{engine}, Redis Cluster", events, len(primaries))
    try:
        w.start().wait_ready()
        items = [(s.kind, s.key, s.value) for s in sent]
        done = asyncio.Event()
        producing = asyncio.create_task(
            produce_until(bootstrap, topics, items, done, 2_500, lambda: written(client))
        )
        for i, node in enumerate(primaries):
            await wait_written(client, await written(client) + 2_000, f"before snapshot {i + 1}")
            snapshot = await asyncio.to_thread(cluster.snapshot, node)
            at_snapshot = await written(client)
            lost = await wait_written(client, at_snapshot + 5_000, f"after snapshot {i + 1}")
            await asyncio.to_thread(cluster.reload, node, snapshot)
            figures.writes_lost += lost - at_snapshot
        await exact_after(producing, done, w, expected, figures)
    finally:
        w.stop()
        await client.aclose()
    print("\n" + figures.line())
    return figures
