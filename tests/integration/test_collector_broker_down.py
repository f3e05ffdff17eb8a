"""The broker goes away under a collector: requests get 503 (never a 202 for events the broker
did not take), nothing of a refused batch is counted, and the same batch sent again once the
broker is back is counted exactly once, as is a third copy of it (dedupe)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from stream.devtools.demo import collector_views
from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import WorkerProcess, http_post
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.collector_keys import make_key
from tests.support.e2e import collector_env, worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHOP = "shop-down"
OCCURRED = datetime.now(UTC) - timedelta(hours=1)
DAY_KEY = f"us:{{{SHOP}}}:day:{OCCURRED.date().isoformat()}"


def wait_for(probe: Callable[[], Any], want: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    got = probe()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.25)
        got = probe()
    assert got == want, f"{what}: {got!r} != {want!r} after {timeout_s}s"


def test_broker_down_503_then_the_retry_counts_once(
    tmp_path: Path, redis_url: str, redis_server: EmbeddedRedis
) -> None:
    broker = EmbeddedBroker(tmp_path / "own-broker").start()
    topics = Topics("cdown.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
    (worker,) = workers(worker_env(broker.bootstrap, redis_url, topics, "batch"), tmp_path, 1)
    env = collector_env(
        broker.bootstrap, redis_url, topics, UPSELL_COLLECTOR_PRODUCE_TIMEOUT_MS="2000"
    )
    collector = WorkerProcess(env, tmp_path, name="collector", role="collector")
    client = redis.Redis(port=redis_server.port)
    key = make_key(redis_url, SHOP, "secret")
    url = f"{collector.url}/v1/collect"

    def views() -> int:
        return int(client.hget(DAY_KEY, "v") or 0)

    try:
        worker.start()
        collector.start().wait_ready()
        worker.wait_ready()
        # 50 first: the restarted (empty) log must stay below the worker's checkpoint, or the
        # worker cannot tell it restarted (docs/state.md, a recreated topic)
        assert http_post(url, collector_views(50, OCCURRED), key=key)[0] == 202
        wait_for(views, 50, 30, "the first batch counted")

        broker.stop()
        refused = collector_views(5, OCCURRED)
        started = time.monotonic()
        status, headers, body = http_post(url, refused, key=key, timeout=30)
        assert status == 503, body
        assert json.loads(body)["error"]["code"] == "unavailable"
        assert headers["Retry-After"] == "1"
        assert time.monotonic() - started < 15, "503 took longer than the produce timeout"
        assert views() == 50, "part of a refused batch was counted"

        broker.start()  # same port, empty: topics are gone
        asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
        deadline = time.monotonic() + 60
        while (status := http_post(url, refused, key=key, timeout=30)[0]) != 202:
            assert status == 503, status
            assert time.monotonic() < deadline, "the collector did not recover from the broker"
            time.sleep(0.5)
        wait_for(views, 55, 90, "the retried batch counted")
        again = json.loads(http_post(url, refused, key=key)[2])
        assert again["duplicates"] == 5, again
        time.sleep(2)
        assert views() == 55, "a batch was counted twice"
    finally:
        client.close()
        collector.stop()
        worker.stop()
        broker.stop()
