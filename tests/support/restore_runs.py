"""Shared by the changelog tests (test_changelog_restore.py, test_changelog_kills.py): the
subscriber snapshots they send, waiting for the changelog to catch up, and the wipe (FLUSHALL,
the event topics deleted and created again empty)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis, RedisCluster

from stream.devtools.workers import WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from stream.state import keys
from stream.state.changelog_cluster import ClusterChangelogState
from tests.support.api_totals import assert_http_totals
from tests.support.e2e import eventually
from tests.support.event_factory import SHOPS
from tests.support.expected_state import ExpectedState
from tests.support.metrics import scrape, total
from tests.support.redis_dump import dump


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


async def caught_up(client: Redis | RedisCluster, timeout_s: float = 60.0) -> None:
    """Every change in Redis acknowledged by the changelog: no shop or global item marked (on
    a Cluster, in no slot)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if isinstance(client, RedisCluster):
            shops, items = await ClusterChangelogState(client).marked(), []
        else:
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
    bootstrap: str,
    topics: Topics,
    client: Redis | RedisCluster,
    w: WorkerProcess,
    expected: ExpectedState,
    timeout_s: float = 120,
) -> dict[str, object]:
    """The counted stream's state once the changelog caught up; then stop, wipe, recreate."""
    await assert_http_totals(w.url, expected, timeout_s)
    await caught_up(client)
    lag = await eventually(
        lambda: asyncio.to_thread(scrape, w),
        lambda m: total(m, "upsell_changelog_lag_records") == 0,
        10,
    )
    assert total(lag, "upsell_changelog_lag_records") == 0, "the lag metric missed the catch-up"
    assert 0 <= total(lag, "upsell_changelog_lag_seconds") < 30
    assert total(lag, "upsell_changelog_records_total") > 0
    before = await dump(client)
    w.stop()
    await client.flushall()
    await recreate_event_topics(bootstrap, topics)
    return before


def restore_by_hand(env: dict[str, str], *args: str) -> str:
    """``upsell-stream restore ARGS`` with a worker's environment; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "restore", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout
