"""What only Apache Kafka can show (one node, tests/conftest.py's ``kafka``): a transactional
producer's aborted records are never counted, and the shops topic really compacts.

Tansu, the embedded broker, has no transactions (it serves ``read_committed`` fetches, but no
producer can abort) and never compacts, so before these tests the first was checked only as
"the consumers ask for read_committed" (tests/unit/test_read_committed.py) and the second not
at all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.devtools.apache_kafka import KafkaCluster
from stream.kafka.topics import ensure_topics
from stream.services.settings_bootstrap import bootstrap_settings
from stream.settings import Topics
from stream.state.memory import MemoryStore
from stream.state.shop_directory import ShopDirectory
from tests.support.compaction import compact_quickly
from tests.support.e2e import (
    day_metrics,
    eventually,
    produce,
    read_topic,
    worker_env,
    workers,
)
from tests.support.odd_records import view

# 600 s: the first test of a process also waits for the Kafka node to start (up to ~200 s
# while 8 agents shared 2 cores; ~25 s alone), and pytest-timeout counts fixture set-up
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


async def in_transaction(
    bootstrap: str, transactional_id: str, items: list[tuple[str, bytes, bytes]], commit: bool
) -> None:
    """Send (topic, key, value) items in one transaction, then commit or abort it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
    await producer.start()
    try:
        await producer.begin_transaction()
        sent = [await producer.send(t, key=k, value=v, partition=0) for t, k, v in items]
        await asyncio.gather(*sent)
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
    finally:
        await producer.stop()


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_aborted_transaction_is_never_counted(
    engine: str, kafka: KafkaCluster, redis_url: str, topics: Topics, tmp_path: Path
) -> None:
    """100 plain views, 300 in an aborted transaction, 200 in a committed one, 50 plain: the
    worker counts 350, and still 350 after it read past every record and marker. Counting
    with read_uncommitted gives 650 (checked by setting ISOLATION_LEVEL so: this test fails)."""
    await ensure_topics(kafka.bootstrap, topics, partitions=4)
    shop, at = "txn", datetime.now(UTC) - timedelta(hours=1)

    def views(first: int, n: int) -> list[tuple[str, bytes, bytes]]:
        return [(topics.views, shop.encode(), view(shop, first + i, at)) for i in range(n)]

    (w,) = workers(worker_env(kafka.bootstrap, redis_url, topics, engine), tmp_path, 1)
    try:
        w.start().wait_ready()
        plain = [("view", k, v) for _t, k, v in views(0, 100)]
        await produce(kafka.bootstrap, topics, plain, partition=0)
        txn_id = f"txn-{topics.prefix}{engine}"
        await in_transaction(kafka.bootstrap, txn_id, views(100, 300), commit=False)
        await in_transaction(kafka.bootstrap, txn_id, views(400, 200), commit=True)
        after = [("view", k, v) for _t, k, v in views(600, 50)]
        await produce(kafka.bootstrap, topics, after, partition=0)
        got = await eventually(
            lambda: day_metrics(w.url, shop, at.date(), at.date()),
            lambda m: m.get("banner_views", 0) >= 350,
            90,
        )
        assert got.get("banner_views") == 350, (got, w.tail())
        await asyncio.sleep(2.0)  # nothing more arrives later
        got = await day_metrics(w.url, shop, at.date(), at.date())
        assert got.get("banner_views") == 350, got
    finally:
        w.stop()


def shop_settings(shop: str, zone: str) -> bytes:
    doc = {"shop_id": shop, "timezone": zone, "week_start": "monday", "currency": "USD"}
    return orjson.dumps(doc)


async def test_shops_topic_compacts_and_the_last_settings_win(
    kafka: KafkaCluster, topics: Topics
) -> None:
    """20 rounds of settings for 50 shops (1,000 records) and tombstones for 5 of them: the log
    cleaner keeps one record per live shop, and reading the compacted topic at start (what a
    worker does, with gaps in the offsets now) gives each shop its last zone, the removed ones
    none."""
    await ensure_topics(kafka.bootstrap, topics, partitions=1)
    await compact_quickly(kafka.bootstrap, topics.shops)
    zones = ["UTC", "Asia/Tokyo", "Europe/Berlin", "America/New_York"]
    shops = [f"s{i}" for i in range(50)]
    rounds = [
        ("shop", s.encode(), shop_settings(s, zones[r % len(zones)]))
        for r in range(20)
        for s in shops
    ]
    gone: list[tuple[str, bytes | None, bytes | None]] = [
        ("shop", s.encode(), None) for s in shops[:5]
    ]
    await produce(kafka.bootstrap, topics, [*rounds, *gone])

    async def compacted() -> int:
        # a record after segment.ms rolls the segment, so the cleaner may take the older ones
        await produce(kafka.bootstrap, topics, [("shop", b"roll", shop_settings("roll", "UTC"))])
        return len(await read_topic(kafka.bootstrap, topics.shops))

    left = await eventually(compacted, lambda n: n < 200, 90, interval_s=1.0)
    assert left < 200, f"{left} records left of {len(rounds) + len(gone)}: no compaction"
    store = MemoryStore()
    await bootstrap_settings(kafka.bootstrap, topics.shops, ShopDirectory(store), datetime.now(UTC))
    last_zone = zones[19 % len(zones)]
    assert {s: store.shops[s].timezone for s in shops[5:]} == dict.fromkeys(shops[5:], last_zone)
    assert not set(shops[:5]) & set(store.shops), "a removed shop came back"
