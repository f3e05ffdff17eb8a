"""Poison records mid-stream: every size from 0 bytes to the producer's limit, binary and odd
bytes, a tombstone. Each ends dead-lettered (a bounded copy that names its size and hash), the
valid views around them are all counted (read over HTTP), and the worker never restarts. One
worker per engine serves the module (its tests' shops and source topics are their own)."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.kafka.clients import make_producer
from stream.settings import Topics
from tests.support.dead_letters import DEAD_LETTER_MAX_BYTES, dead_letter_schema
from tests.support.e2e import day_metrics, eventually, produce, read_topic
from tests.support.engine_worker import EngineWorker
from tests.support.odd_records import interleaved, odd_values, view

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# The embedded broker (Tansu) took records of 20 MiB and more; real brokers default to 1 MiB.
HUGE_SIZES = (5 * 1024 * 1024, 20 * 1024 * 1024)


async def letters_from(bootstrap: str, topics: Topics, sources: list[str]) -> list[Any]:
    """The dead letters of records read from ``sources`` (the module's tests share the topic)."""
    letters = await read_topic(bootstrap, topics.dead_letters)
    return [r for r in letters if orjson.loads(r.value)["source"]["topic"] in sources]


async def test_records_of_every_size_and_odd_bytes_mid_stream(
    engine_worker: EngineWorker, broker: EmbeddedBroker
) -> None:
    engine, created_topics, w = engine_worker.engine, engine_worker.topics, engine_worker.worker
    at = datetime.now(UTC) - timedelta(hours=1)
    odd = odd_values(random.Random(7))
    items, valid = interleaved("poison", at, odd, valid_between=50, seed=3)
    await produce(broker.bootstrap, created_topics, [("view", k, v) for k, v in items])
    huge = [os.urandom(size) for size in HUGE_SIZES]  # beyond the producer's default limit
    producer = make_producer(
        broker.bootstrap, max_request_size=64 * 1024 * 1024, max_batch_size=64 * 1024 * 1024
    )
    await producer.start()
    try:
        for value in huge:
            await (await producer.send(created_topics.views, value, key=b"poison"))
    finally:
        await producer.stop()
    odd += huge
    more = [("view", b"poison", view("poison", valid + i, at)) for i in range(50)]
    await produce(broker.bootstrap, created_topics, more)
    valid += len(more)
    metrics = await eventually(
        lambda: day_metrics(w.url, "poison", at.date(), at.date()),
        lambda m: m.get("banner_views") == valid,
        90,
    )
    assert metrics.get("banner_views") == valid, f"{engine}: {metrics}\n{w.tail()}"
    letters = await eventually(
        lambda: letters_from(broker.bootstrap, created_topics, [created_topics.views]),
        lambda rs: len(rs) >= len(odd),
        30,
    )
    assert w.alive() and w.starts == 1, w.tail()
    assert len(letters) == len(odd)
    schema = dead_letter_schema()
    sent = {(hashlib.sha256(v).hexdigest() if v is not None else None) for v in odd}
    seen = set()
    for record in letters:
        assert len(record.value) <= DEAD_LETTER_MAX_BYTES, len(record.value)
        doc = orjson.loads(record.value)
        assert not list(schema.iter_errors(doc)), doc["reason"]
        seen.add(doc["original_sha256"])
        if doc["original_bytes"] is not None:
            assert doc["truncated"] == (doc["original_bytes"] > 16 * 1024)
    assert seen == sent


async def test_the_settings_and_snapshot_agents_dead_letter_odd_records_too(
    engine_worker: EngineWorker, broker: EmbeddedBroker
) -> None:
    """The Faust agents of upsell.shops and upsell.subscriber-counts (both engines run them)."""
    created_topics, w = engine_worker.topics, engine_worker.worker
    odd = [v for v in odd_values(random.Random(5), (0, 150_000, 600_000)) if v is not None]
    today = datetime.now(UTC).date()
    setting = {"shop_id": "agent", "timezone": "Asia/Tokyo", "currency": "JPY"}
    snapshot = {"shop_id": "agent", "date": today.isoformat(), "active_subscribers": 1234}
    items: list[tuple[str, bytes | None, bytes | None]] = []
    for kind in ("shop", "subscribers"):
        items += [(kind, b"agent", v) for v in odd]
    items += [("shop", b"agent", orjson.dumps(setting))]
    items += [("subscribers", b"agent", orjson.dumps(snapshot))]
    await produce(broker.bootstrap, created_topics, items)
    metrics = await eventually(
        lambda: day_metrics(w.url, "agent", today, today),
        lambda m: m.get("active_subscribers") == 1234,
        60,
    )
    assert metrics.get("active_subscribers") == 1234, f"{metrics}\n{w.tail()}"
    agents = [created_topics.shops, created_topics.subscriber_counts]
    letters = await eventually(
        lambda: letters_from(broker.bootstrap, created_topics, agents),
        lambda rs: len(rs) >= 2 * len(odd),
        30,
    )
    assert w.alive() and w.starts == 1, w.tail()
    assert len(letters) == 2 * len(odd)
    assert max(len(r.value) for r in letters) <= DEAD_LETTER_MAX_BYTES
