"""What operators see: /metrics moving with the traffic, /readyz following Redis, /healthz."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from redis import Redis as SyncRedis

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import http_get
from stream.settings import Settings, Topics
from stream.state import keys
from stream.state.retention import last_expired_day
from tests.support.dates import an_hour_ago
from tests.support.e2e import produce, worker_env, workers
from tests.support.event_factory import mixed_events, settings_messages
from tests.support.metrics import scrape, total

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_metrics_follow_the_traffic(
    broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    topics = created_topics
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(5_000, seed=91, bad_every=500)
    bad = sum(1 for s in sent if not s.valid)
    # left over from a shop counted long ago: the retention sweep (10 s after start) deletes its
    # day a little past the retention and keeps the one a little inside it (the worker runs
    # with the default retention)
    leftover = SyncRedis.from_url(redis_url)
    cutoff = date.fromisoformat(last_expired_day(time.time(), Settings().retention_days))
    expired = keys.day("old-shop", (cutoff - timedelta(days=1)).isoformat())
    recent = keys.day("old-shop", (cutoff + timedelta(days=2)).isoformat())
    leftover.hset(expired, "v", 1)
    leftover.hset(recent, "v", 1)
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, "batch"), tmp_path, 1)
    try:
        w.start().wait_ready()
        await produce(broker.bootstrap, topics, [(s.kind, s.key, s.value) for s in sent])
        deadline = time.monotonic() + 60
        while True:
            m = scrape(w)
            consumed = total(m, "upsell_events_total")
            if consumed >= len(sent) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        money = [s.value for s in sent if s.valid and s.kind in ("upgrade", "downgrade")]
        resent = len(money) - len(set(money))
        assert resent > 0
        assert consumed == len(sent), f"{consumed} of {len(sent)} events consumed after 60 s"
        assert total(m, "upsell_events_total", outcome="counted") == len(sent) - bad - resent
        assert total(m, "upsell_events_total", outcome="duplicate") == resent
        assert total(m, "upsell_events_total", outcome="dead_letter") == bad
        assert total(m, "upsell_dead_letters_total") == bad
        assert total(m, "upsell_events_total", topic=topics.views) == sum(
            1 for s in sent if s.kind == "view"
        )
        lag_deadline = time.monotonic() + 10  # the lag is refreshed once a second
        while (lag := total(scrape(w), "upsell_consumer_lag")) != 0:
            assert time.monotonic() < lag_deadline, f"lag {lag} after everything was counted"
            await asyncio.sleep(0.5)
        assert total(scrape(w), "upsell_consumer_lag_seconds") == 0
        assert total(m, "upsell_assigned_partitions") == 16
        assert total(m, "upsell_batch_apply_seconds_count") > 0
        assert total(m, "upsell_freshness_seconds_count") > 0
        assert total(m, "upsell_redis_up") == 1
        assert total(m, "process_resident_memory_bytes") > 0
        http_get(f"{w.url}/v1/shops/shop-utc/overview")
        m = scrape(w)
        assert (
            total(
                m,
                "upsell_api_request_seconds_count",
                route="/v1/shops/{shop_id}/overview",
                status="200",
            )
            >= 1
        )
        # labels stay bounded: no shop ids anywhere
        assert not any("shop-" in v for (_n, ls) in m for _k, v in ls)
        while total(scrape(w), "upsell_retention_deleted_keys_total") < 1:
            assert time.monotonic() < deadline + 30, "no retention sweep"
            await asyncio.sleep(0.5)
        assert total(scrape(w), "upsell_retention_deleted_keys_total") == 1
        assert not leftover.exists(expired)
        assert leftover.exists(recent)
    finally:
        w.stop()
        leftover.close()


async def test_readyz_follows_redis(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, redis_url: str, tmp_path: Path
) -> None:
    redis = redis_server  # the session's: stopped here, running again when the test ends
    topics = Topics("ready.")
    (w,) = workers(worker_env(broker.bootstrap, redis.url, topics, "batch"), tmp_path, 1)
    try:
        w.start().wait_ready()
        assert http_get(f"{w.url}/healthz")[0] == 200
        redis.stop()
        deadline = time.monotonic() + 20
        status, body = 200, b""
        while time.monotonic() < deadline and status == 200:
            status, body = http_get(f"{w.url}/readyz")
            await asyncio.sleep(0.3)
        assert status == 503, f"/readyz still {status} 20 s after Redis stopped: {body!r}"
        assert json.loads(body)["checks"]["redis"] is False
        assert http_get(f"{w.url}/healthz")[0] == 200  # alive, just not ready
        redis.start()
        w.wait_ready(30)
        # and it still counts after Redis came back
        occurred_at, day = an_hour_ago()
        await produce(
            broker.bootstrap,
            topics,
            [
                (
                    "view",
                    b"s1",
                    orjson.dumps(
                        {
                            "event_id": "r1",
                            "shop_id": "s1",
                            "occurred_at": occurred_at,
                            "group_id": "g",
                            "variation_id": "a",
                        }
                    ),
                )
            ],
        )
        import redis as redis_lib

        client = redis_lib.Redis(port=redis.port)
        counted = None
        for _ in range(150):
            counted = client.hget(keys.day("s1", day), "v")
            if counted is not None:
                break
            await asyncio.sleep(0.2)
        assert counted == b"1", f"the view after Redis came back counted {counted!r} after 30 s"
        client.close()
    finally:
        w.stop()
        if not redis._answers():
            redis.start()
