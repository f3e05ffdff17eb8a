"""Redis that comes back older than what the worker last wrote, while events flow and the worker
keeps running: restored in place from an older snapshot (clients stay connected, as after a
failover to a lagging replica) and restarted from an older RDB. Events in through Kafka, numbers
out of HTTP, compared with the reference aggregator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import http_get
from stream.settings import Topics
from tests.event_factory import SHOPS, mixed_events, settings_messages
from tests.expected_state import ExpectedState
from tests.integration.api_totals import assert_http_totals
from tests.integration.e2e import (
    produce,
    produce_until,
    wait_written,
    worker_env,
    workers,
    written,
)
from tests.older_redis import OlderRedis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Both engines. The Faust engine reads the lost range beside Faust (stream/engines/
# faust_repair.py). Its delivery once stalled after the second rewind (docs/state.md, item 8);
# not seen in 9 runs on the current code (3 before Faust's bookkeeping followed the engine's
# seeks, 6 after).
ENGINES = ["batch", "faust"]


def rewinds(server: OlderRedis) -> list[Callable[[Path], None]]:
    return [server.reload, server.restart_from]


@pytest.mark.parametrize("engine", ENGINES)
async def test_redis_restored_from_older_snapshots_twice_mid_stream(
    engine: str, broker: EmbeddedBroker, created_topics: Topics, tmp_path: Path
) -> None:
    topics = created_topics
    server = OlderRedis(tmp_path).start()
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(70_000, seed=77)
    expected = ExpectedState(SHOPS).add_all(sent)
    (w,) = workers(
        worker_env(
            broker.bootstrap,
            server.url,
            topics,
            engine,
            UPSELL_BATCH_MAX_EVENTS="1000",
            UPSELL_APPLY_SHOPS_PER_CALL="2",  # a batch in several calls: a rewind between them
        ),
        tmp_path,
        1,
    )
    redis = Redis.from_url(server.url)
    try:
        w.start().wait_ready()
        items = [(s.kind, s.key, s.value) for s in sent]
        rewound = asyncio.Event()
        producing = asyncio.create_task(
            produce_until(broker.bootstrap, topics, items, rewound, 2_000, lambda: written(redis))
        )
        for rewind in rewinds(server):
            await wait_written(redis, await written(redis) + 2_000, "before the snapshot")
            await asyncio.to_thread(server.snapshot)
            # the worker writes more after the snapshot: those writes are what Redis loses
            await wait_written(redis, await written(redis) + 4_000, "after the snapshot")
            await asyncio.to_thread(rewind, server.snapshots_taken[-1])
        assert not producing.done(), "the stream ended before the last rewind: produce slower"
        rewound.set()
        await producing
        await assert_http_totals(w.url, expected, 150)
        assert w.alive() and w.starts == 1, "the worker must repair without a restart"
        status, body = http_get(f"{w.url}/metrics")
        assert status == 200
        counted = [
            line
            for line in body.decode().splitlines()
            if line.startswith("upsell_redis_rewinds_total")
        ]
        assert counted and float(counted[0].split()[-1]) >= 2, counted
    finally:
        w.stop()
        await redis.aclose()
        server.stop()
