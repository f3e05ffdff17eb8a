"""Records Kafka no longer has when the worker comes to read them: retention deleted them before
they were counted. Both engines count them in ``upsell_records_lost_total``, list them in
``/readyz/counting`` (``records_lost``) and log an error, and count every record Kafka still has.

It runs on Apache Kafka (the ``kafka`` fixture), which really deletes: a first worker counts 300
views and stops; 500 more are produced and DeleteRecords (what retention does to whole
segments, here to an exact offset) removes offsets 0..499; the next worker resumes at 300, finds
the log starting at 500: 200 records lost, the last 300 counted.

This replaced a Kafka protocol proxy in front of Tansu (tests/support/kafka_proxy.py's
``retain_from``, removed) that only faked the deletion: Tansu deletes nothing (no DeleteRecords,
``retention.ms`` not enforced), so the proxy rewrote ListOffsets (earliest) and answered fetches
below the offset with OFFSET_OUT_OF_RANGE, as it assumed Kafka would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from stream.devtools.apache_kafka import KafkaCluster
from stream.devtools.workers import http_get
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.e2e import day_metrics, eventually, produce, worker_env, workers
from tests.support.odd_records import view

# 600 s: the first test of a process also waits for the Kafka node to start (up to ~200 s
# while 8 agents shared 2 cores; ~25 s alone), and pytest-timeout counts fixture set-up
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_records_deleted_by_retention_before_counting_are_reported_lost(
    engine: str,
    kafka: KafkaCluster,
    redis_url: str,
    topics: Topics,
    tmp_path: Path,
) -> None:
    await ensure_topics(kafka.bootstrap, topics, partitions=4)
    at = datetime.now(UTC) - timedelta(hours=1)
    shop = "lost"
    env = worker_env(kafka.bootstrap, redis_url, topics, engine)
    first, second = workers(env, tmp_path, 2)

    async def views(start: int, n: int) -> None:
        items = [("view", shop.encode(), view(shop, start + i, at)) for i in range(n)]
        await produce(kafka.bootstrap, topics, items, partition=0)

    async def counted(url: str, n: int) -> int:
        got = await eventually(
            lambda: day_metrics(url, shop, at.date(), at.date()),
            lambda m: m.get("banner_views") == n,
            60,
        )
        return int(got.get("banner_views", -1))

    try:
        first.start().wait_ready()
        await views(0, 300)
        assert await counted(first.url, 300) == 300, first.tail()
    finally:
        first.stop()
    await views(300, 500)
    assert await delete_before(kafka.bootstrap, TopicPartition(topics.views, 0), 500) == 500
    try:
        await asyncio.to_thread(second.start().wait_ready)
        assert await counted(second.url, 600) == 600, second.tail()
        _, metrics = http_get(f"{second.url}/metrics")
        _, ready = http_get(f"{second.url}/readyz/counting")
        assert second.alive() and second.starts == 1, second.tail()
    finally:
        second.stop()
    lost = f'upsell_records_lost_total{{topic="{topics.views}"}} 200.0'
    assert lost in metrics.decode(), [ln for ln in metrics.decode().splitlines() if "lost" in ln]
    assert orjson.loads(ready)["checks"]["records_lost"] == {f"{topics.views}[0]": 200}, ready
    assert "events 300..499 were deleted by retention" in second.tail(200), second.tail()


async def delete_before(bootstrap: str, partition: TopicPartition, offset: int) -> int:
    """DeleteRecords: the partition's log starts at ``offset``; returns the new log start."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        done = await admin.delete_records({partition: RecordsToDelete(before_offset=offset)})
    finally:
        await admin.close()
    return int(done[partition])
