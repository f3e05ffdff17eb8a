"""The changelog on Apache Kafka, which really deletes and compacts (Tansu does neither): the
event topics lose their records to retention (DeleteRecords up to their end) instead of being
recreated, and the changelog topic is compacted before the restore, so the rebuilt Redis proves
that compaction kept every piece of state's latest value. The producer is idempotent here
(UPSELL_CHANGELOG_IDEMPOTENT=on: Kafka grants InitProducerId). Both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from redis.asyncio import Redis

from stream.devtools.apache_kafka import KafkaCluster
from stream.kafka.clients import make_consumer
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.api_totals import assert_http_totals
from tests.support.compaction import compact_quickly
from tests.support.e2e import eventually, produce, read_topic, worker_env, workers
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items
from tests.support.expected_state import ExpectedState
from tests.support.metrics import scrape, total
from tests.support.redis_dump import differences, dump
from tests.support.restore_runs import caught_up, snapshots


async def delete_everything(bootstrap: str, topics: Topics) -> int:
    """DeleteRecords up to the end of every event partition (what retention does); returns how
    many records went."""
    tps = [
        TopicPartition(topic, p)
        for topic in [*topics.counted, topics.subscriber_counts]
        for p in range(4)
    ]
    consumer = make_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end})
    finally:
        await admin.close()
    return sum(ends.values())


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "engine",
    ["batch", pytest.param("faust", marks=pytest.mark.slow)],  # Faust: make chaos
)
async def test_on_kafka_retention_takes_the_events_and_compaction_keeps_the_latest_state(
    engine: str, kafka: KafkaCluster, redis_url: str, topics: Topics, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap
    await ensure_topics(bootstrap, topics, partitions=4)
    await compact_quickly(bootstrap, topics.changelog)
    client = Redis.from_url(redis_url)
    sent = mixed_events(6_000, seed=36)
    expected = ExpectedState(SHOPS).add_all(sent)
    env = worker_env(bootstrap, redis_url, topics, engine, UPSELL_CHANGELOG_IDEMPOTENT="on")
    (w,) = workers(env, tmp_path, 1)
    try:
        await produce(bootstrap, topics, settings_messages())
        w.start().wait_ready()
        await produce(bootstrap, topics, snapshots())

        async def flushed() -> float:
            return total(await asyncio.to_thread(scrape, w), "upsell_changelog_records_total")

        for i in range(0, len(sent), 500):  # in steps, each flushed: a flush rewrites hot keys
            previous = await flushed()
            await produce(bootstrap, topics, as_items(sent[i : i + 500]))
            now = await eventually(flushed, previous.__lt__, 60)
            assert now > previous, f"no flush in 60 s after step {i}"
        await assert_http_totals(w.url, expected, 180)
        await caught_up(client)
        acknowledged = await flushed()
        rounds = iter(range(360, 10_000))

        async def superseded() -> tuple[int, int]:
            """(superseded records still on the topic, superseded records written): a record is
            superseded by a later one of its key; compaction leaves each partition's active
            segment alone, so the measure is how many of these have gone."""
            extra = mixed_events(3, seed=next(rounds))  # its flush rolls the segment
            expected.add_all(extra)
            await produce(bootstrap, topics, as_items(extra))
            records = await read_topic(bootstrap, topics.changelog)
            keys = len({(r.partition, r.key) for r in records})
            return len(records) - keys, int(await flushed()) - keys

        left, written = await eventually(superseded, lambda n: n[0] < n[1] * 0.3, 240, 2.0)
        assert written > 1_000, f"{written} superseded records written: too few to compact"
        assert left < written * 0.3, f"{left} of {written} superseded records left: no compaction"
        await assert_http_totals(w.url, expected, 60)
        await caught_up(client)
        before = await dump(client)
        w.stop()
        await client.flushall()
        assert await delete_everything(bootstrap, topics) > 6_000

        w.start().wait_ready()
        after = await dump(client)
        assert not differences(before, after), "\n".join(differences(before, after))
        more = mixed_events(2_000, seed=37)
        expected.add_all(more)
        await produce(bootstrap, topics, as_items(more))
        await assert_http_totals(w.url, expected, 120)
    finally:
        w.stop()
        await client.aclose()
    print(
        f"\nchangelog on Kafka ({engine}): {acknowledged:g} records acknowledged before compaction;"
        f" {left} of {written} superseded ones left after it"
    )
