"""Three brokers of Apache Kafka (tests/conftest.py's ``kafka_cluster``): replication factor 3,
``min.insync.replicas=2``, TLS and SASL_SSL listeners with SCRAM users, and a leader that dies
mid-stream while a worker counts. Tansu is one node with no working TLS, so none of this could
be tested before.

In ``make chaos``, not ``make test``: three JVMs start in 40-120 s on 2 cores (the second figure
while 8 agents shared the machine) and a killed node's restart takes as long again."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context
from redis.asyncio import Redis

from stream.devtools.apache_kafka import KafkaCluster
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.brokers import KAFKA_USERS
from tests.support.e2e import eventually, produce, produce_until, worker_env, workers, written
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items, settle, wait_for_state
from tests.support.expected_state import ExpectedState

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

# A write survives a leader's death only when every in-sync replica has it (acks=all), and a
# retried write is not doubled only with the idempotent producer (on Apache Kafka: Tansu
# refuses it, see stream/kafka/clients.py).
SAFE_WRITES: dict[str, Any] = {"enable_idempotence": True, "acks": "all"}


async def replicas(bootstrap: str, topic: str) -> list[int]:
    """How many replicas each partition of ``topic`` has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [len(p["replicas"]) for p in described["partitions"]]


async def leader_of(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # no public call refreshes metadata
        leader = consumer._client.cluster.leader_for_partition(tp)
    finally:
        await consumer.stop()
    return int(leader if leader is not None else -1)


async def test_ssl_and_sasl_ssl_listeners_with_scram_users(
    kafka_cluster: KafkaCluster, topics: Topics
) -> None:
    """Written over SASL_SSL as a SCRAM user, read back over SSL, each partition on 3 replicas;
    a wrong password is refused."""
    k = kafka_cluster
    assert k.ca is not None
    await ensure_topics(k.bootstrap, topics, partitions=2, replication=3, min_insync=2)
    assert await replicas(k.bootstrap, topics.views) == [3, 3]
    ssl = create_ssl_context(cafile=str(k.ca.ca_file))
    user, password = next(iter(KAFKA_USERS.items()))
    scram = {"sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user}
    producer = AIOKafkaProducer(
        bootstrap_servers=k.sasl_ssl_bootstrap,
        security_protocol="SASL_SSL",
        ssl_context=ssl,
        sasl_plain_password=password,
        **scram,
        **SAFE_WRITES,
    )
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topics.views, f"v{i}".encode(), partition=i % 2)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topics.views,
        bootstrap_servers=k.ssl_bootstrap,
        security_protocol="SSL",
        ssl_context=ssl,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < 10:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            got += [r.value for records in batches.values() for r in records if r.value]
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(10))
    wrong = AIOKafkaProducer(
        bootstrap_servers=k.sasl_ssl_bootstrap,
        security_protocol="SASL_SSL",
        ssl_context=ssl,
        sasl_plain_password=password + "-wrong",
        request_timeout_ms=5000,
        **scram,
    )
    with pytest.raises(KafkaError):
        await wrong.start()
    await wrong.stop()


async def test_leader_killed_and_restarted_mid_stream_counts_exactly(
    kafka_cluster: KafkaCluster, redis_url: str, topics: Topics, tmp_path: Path
) -> None:
    """kill -9 of the broker that leads a views partition while 30,000 mixed events flow
    (acks=all, idempotent producer), leadership moves to another replica, the broker comes
    back with its data 3 s later: the worker's totals are exact and stay so."""
    k = kafka_cluster
    await ensure_topics(k.bootstrap, topics, partitions=4, replication=3, min_insync=2)
    await produce(k.bootstrap, topics, settings_messages(), **SAFE_WRITES)
    sent = mixed_events(30_000, seed=66)
    expected = ExpectedState(SHOPS).add_all(sent)
    env = worker_env(
        k.bootstrap,
        redis_url,
        topics,
        "batch",
        UPSELL_REPLICATION_FACTOR="3",
        UPSELL_MIN_INSYNC_REPLICAS="2",
        UPSELL_BATCH_MAX_EVENTS="2000",
    )
    (w,) = workers(env, tmp_path, 1)
    redis = Redis.from_url(redis_url)
    tp = TopicPartition(topics.views, 0)
    try:
        w.start().wait_ready()
        done = asyncio.Event()
        producing = asyncio.create_task(
            produce_until(
                k.bootstrap,
                topics,
                as_items(sent),
                done,
                len(sent) / 40.0,
                lambda: written(redis),
                lead=5_000,
                **SAFE_WRITES,
            )
        )
        await asyncio.sleep(random.Random(7).uniform(2.0, 4.0))
        assert not producing.done(), "production ended before the kill: events must flow"
        victim = await leader_of(k.bootstrap, tp)
        k.kill(victim)
        moved = await eventually(lambda: leader_of(k.bootstrap, tp), lambda n: n != victim, 30)
        assert moved not in (victim, -1), f"leadership of {tp} stayed on {victim}"
        await asyncio.sleep(3.0)  # events flow with one broker down (2 replicas in sync)
        await asyncio.to_thread(k.start_node, victim)
        done.set()
        await producing
        await wait_for_state(redis, expected, 180)
        await settle(redis, expected)
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
        await redis.aclose()
