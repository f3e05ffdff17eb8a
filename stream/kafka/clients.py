"""Kafka client factories shared by the worker, the demo producer, tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


def make_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that works on every broker we meet: no idempotence, acks=1, small linger for
    throughput with low latency. Idempotence is off for Tansu only, the embedded default: it
    still answers InitProducerId with UnknownError (re-checked 2026-12-07). Apache Kafka takes
    it; the tests on Kafka pass ``enable_idempotence=True, acks="all"`` where a leader fails
    over (tests/chaos/test_kafka_cluster.py)."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": False,
        "acks": 1,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


# Every consumer of ours reads committed records only: a transactional producer's aborted writes
# are never counted (docs/state.md says what was verified where).
ISOLATION_LEVEL = "read_committed"


def make_consumer(bootstrap: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer that never commits on its own and reads committed records only."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_auto_commit": False,
        "isolation_level": ISOLATION_LEVEL,
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)


async def produce_records(
    bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes | None]], window: int = 5000
) -> int:
    """Send (topic, key, value) records, waiting for every acknowledgement; returns the count."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        return await send_all(producer, records, window)
    finally:
        await producer.stop()


async def send_all(
    producer: AIOKafkaProducer,
    records: Iterable[tuple[str, bytes | None, bytes | None]],
    window: int = 5000,
) -> int:
    """Send (topic, key, value) records on a started producer, at most ``window`` awaiting their
    acknowledgement at once, and wait for every one; returns the count."""
    sent = 0
    pending = []
    for topic, key, value in records:
        pending.append(await producer.send(topic, key=key, value=value))
        sent += 1
        if len(pending) >= window:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return sent


async def wait_for_broker(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Return once the broker answers a metadata request, else raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
    raise TimeoutError(f"broker {bootstrap} did not answer within {timeout_s}s: {last}")
