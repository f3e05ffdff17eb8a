"""The collector the collector tests post to: the site (a running collector with a public and a
secret key for one shop) and the events they send. The ``site`` fixture that starts it is in
tests/integration/conftest.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stream.devtools.workers import WorkerProcess, http_post
from stream.settings import Topics
from tests.support.collector_keys import make_key
from tests.support.e2e import read_topic

SHOP = "shop-col"
ORIGIN = "https://shop-col.example"


class Site:
    def __init__(self, collector: WorkerProcess, topics: Topics, bootstrap: str, redis: str):
        self.collector = collector
        self.topics = topics
        self.bootstrap = bootstrap
        self.redis_url = redis
        self.public = make_key(redis, SHOP, "public", [ORIGIN])
        self.secret = make_key(redis, SHOP, "secret")

    @property
    def collect_url(self) -> str:
        return self.collector.url + "/v1/collect"

    def post(
        self, events: list[dict[str, Any]], key: str | None, origin: str | None = None, **extra: Any
    ) -> tuple[int, dict[str, str], Any]:
        body = orjson.dumps({"events": events, **extra})
        status, headers, raw = http_post(self.collect_url, body, key=key, origin=origin)
        return status, headers, json.loads(raw)

    def views_in_topic(self) -> list[dict[str, Any]]:
        records = asyncio.run(read_topic(self.bootstrap, self.topics.views))
        return [orjson.loads(r.value) for r in records]


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def view(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "banner_view",
        "event_id": str(uuid.uuid4()),
        "shop_id": SHOP,
        "occurred_at": now_iso(),
        "group_id": "g1",
        "variation_id": "a",
        **fields,
    }


def upgrade() -> dict[str, Any]:
    plan = {"product_ids": ["p1"], "selling_plan_id": "monthly", "mrr_minor": 1000}
    return {
        "kind": "upgrade",
        "event_id": str(uuid.uuid4()),
        "shop_id": SHOP,
        "occurred_at": now_iso(),
        "subscriber_id": "sub-1",
        "order_id": "o-1",
        "from": plan,
        "to": {**plan, "selling_plan_id": "annual", "mrr_minor": 1500},
        "revenue_minor": 15000,
        "currency": "USD",
    }
