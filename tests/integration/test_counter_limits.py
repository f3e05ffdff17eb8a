"""Counters near their limit: an upgrade whose revenue would take a running total past 2^63 is
refused whole (dead-lettered as ``bad_value:total_overflow``), never half-applied, and the worker
goes on counting. Events in through Kafka, numbers out of HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import http_get
from stream.settings import Topics
from stream.state import keys
from tests.support.e2e import eventually, produce, read_topic, worker_env, workers
from tests.support.event_factory import settings_messages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

LARGEST = 10**12  # the largest amount the decoder accepts (docs/contract.md)
NEAR_LIMIT = 2**63 - 1 - 3 * LARGEST  # a running total that 3 more such upgrades fill


def upgrade(i: int, at: datetime, revenue: int) -> tuple[str, bytes, bytes]:
    doc = {
        "event_id": f"max-{i}",
        "shop_id": "shop-utc",
        "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "group_id": "g",
        "variation_id": "a",
        "subscriber_id": f"sub-{i}",
        "order_id": f"o-{i}",
        "from": {"product_ids": ["basic"], "selling_plan_id": "p1", "mrr_minor": 100},
        "to": {"product_ids": ["pro"], "selling_plan_id": "p2", "mrr_minor": 200},
        "revenue_minor": revenue,
        "currency": "USD",
    }
    return ("upgrade", b"shop-utc", orjson.dumps(doc))


def view(i: int, at: datetime) -> tuple[str, bytes, bytes]:
    doc = {
        "event_id": f"v-{i}",
        "shop_id": "shop-utc",
        "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "group_id": "g",
        "variation_id": "a",
    }
    return ("view", b"shop-utc", orjson.dumps(doc))


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_maximal_amounts_never_half_apply(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    topics = created_topics
    at = datetime.now(UTC) - timedelta(hours=1)
    day = at.date().isoformat()
    redis = Redis.from_url(redis_url)
    await redis.hset(keys.day("shop-utc", day), "r:USD", NEAR_LIMIT)  # years of revenue, say
    await produce(broker.bootstrap, topics, settings_messages())
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, engine), tmp_path, 1)
    upgrades = [upgrade(i, at, LARGEST) for i in range(8)]
    views = [view(i, at) for i in range(100)]
    try:
        w.start().wait_ready()
        # one partition, one batch: the upgrades that fit and those that do not, then views
        await produce(broker.bootstrap, topics, upgrades + views, partition=0)
        url = f"{w.url}/v1/shops/shop-utc/overview?period=custom&from={day}&to={day}"

        async def metrics() -> dict[str, object]:
            status, body = http_get(url, timeout=5)
            assert status == 200, body
            return dict(json.loads(body)["metrics"])

        # views and upgrades are separate topics: wait for both
        got = await eventually(
            metrics, lambda m: m["banner_views"] == 100 and m["conversions"] == 3, 60
        )
        assert got["banner_views"] == 100, f"the worker stopped counting: {got}\n{w.tail()}"
        fits = 3  # the third ends exactly at 2^63 - 1, the largest value a counter holds
        assert got["conversions"] == fits, got
        assert got["revenue_minor"] == {"USD": NEAR_LIMIT + fits * LARGEST}, got
        letters = await eventually(
            lambda: read_topic(broker.bootstrap, topics.dead_letters),
            lambda found: len(found) == len(upgrades) - fits,
            30,
        )
        reasons = [dict(r.headers)["reason"].decode() for r in letters]
        assert reasons == ["bad_value:total_overflow"] * (len(upgrades) - fits), reasons
        group_fields = await redis.hgetall(keys.groups("shop-utc", day))
        assert int(group_fields[b"u\x1fg"]) == fits, group_fields  # no other key half-applied
        assert w.alive() and w.starts == 1
    finally:
        w.stop()
        await redis.aclose()
