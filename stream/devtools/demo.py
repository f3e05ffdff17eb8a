"""Seeded, realistic demo traffic: shops in several time zones, upgrade groups and variations,
views >> clicks >> upgrades, some downgrades, two currencies, a few duplicates and malformed
messages. Same seed, same bytes. Used by ``dev --demo``, ``produce-demo`` and benchmarks."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from schemas.timestamps import utc_text
from stream.dates.clock import Clock, system_clock
from stream.kafka.clients import make_producer, send_all
from stream.kafka.security import KafkaTarget
from stream.kafka.topics import ensure_topics
from stream.settings import Topics

SHOP_PROFILES = [
    ("demo-berlin", "Europe/Berlin", "monday", "EUR"),
    ("demo-nyc", "America/New_York", "sunday", "USD"),
    ("demo-mumbai", "Asia/Kolkata", "monday", "USD"),
    ("demo-utc", "UTC", "monday", "USD"),
    ("demo-auckland", "Pacific/Auckland", "monday", "EUR"),
]
GROUPS = ["annual-upgrade", "premium-tier", "bundle-offer", "gift-box", "family-plan"]
VARIATIONS = ["control", "discount-10", "free-shipping", "bonus-item"]
PLANS = [
    ("monthly-basic", 1500),
    ("monthly-plus", 2500),
    ("monthly-pro", 4000),
    ("annual-pro", 3300),
]


@dataclass(frozen=True, slots=True)
class DemoRecord:
    topic_kind: str  # view | click | upgrade | downgrade | shop | subscribers
    key: bytes | None
    value: bytes
    expect: str  # count | duplicate | dead_letter | setting

    def topic(self, topics: Topics) -> str:
        return topics.of(self.topic_kind)


def collector_views(n: int, at: datetime) -> bytes:
    """A collector request body: ``n`` banner views of group ``g``, variation ``a`` at ``at``,
    each with its own event id."""
    stamp = utc_text(at)
    events = [
        {
            "kind": "banner_view",
            "event_id": str(uuid.uuid4()),
            "occurred_at": stamp,
            "group_id": "g",
            "variation_id": "a",
        }
        for _ in range(n)
    ]
    return orjson.dumps({"events": events})


class DemoGenerator:
    def __init__(
        self,
        seed: int = 7,
        shops: int = 5,
        groups_per_shop: int = 3,
        variations_per_group: int = 2,
        days: int = 14,
        clock: Clock = system_clock,
        end: datetime | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.shops = [
            (
                f"{SHOP_PROFILES[i % len(SHOP_PROFILES)][0]}"
                f"{'' if i < len(SHOP_PROFILES) else '-' + str(i)}",
                *SHOP_PROFILES[i % 5][1:],
            )
            for i in range(shops)
        ]
        self.groups = GROUPS[: max(1, min(groups_per_shop, len(GROUPS)))]
        self.variations = VARIATIONS[: max(1, min(variations_per_group, len(VARIATIONS)))]
        self.days = days
        self.clock = clock
        self.end = end
        self._n = 0
        self._money: list[DemoRecord] = []

    def settings(self) -> list[DemoRecord]:
        return [
            DemoRecord(
                "shop",
                shop.encode(),
                orjson.dumps(
                    {"shop_id": shop, "timezone": tz, "week_start": week, "currency": cur}
                ),
                "setting",
            )
            for shop, tz, week, cur in self.shops
        ]

    def subscriber_snapshots(self) -> list[DemoRecord]:
        today = (self.end or self.clock()).date()
        out = []
        for i, (shop, *_rest) in enumerate(self.shops):
            for d in range(self.days + 1):
                day = today - timedelta(days=self.days - d)
                out.append(
                    DemoRecord(
                        "subscribers",
                        shop.encode(),
                        orjson.dumps(
                            {
                                "shop_id": shop,
                                "date": day.isoformat(),
                                "active_subscribers": 2000 + 500 * i + 7 * d,
                            }
                        ),
                        "setting",
                    )
                )
        return out

    def events(self, n: int, live: bool = False) -> Iterator[DemoRecord]:
        """``n`` events spread over the last ``days`` days (``live``: occurring now)."""
        rng = self.rng
        for _ in range(n):
            self._n += 1
            i = self._n
            end = self.end or self.clock()
            at = end if live else end - timedelta(seconds=rng.random() * self.days * 86400)
            shop = self.shops[rng.randrange(len(self.shops))][0]
            base: dict[str, object] = {
                "event_id": f"d{self.seed}-{i}",
                "shop_id": shop,
                "occurred_at": utc_text(at),
                "group_id": rng.choice(self.groups),
                "variation_id": rng.choice(self.variations),
            }
            key = shop.encode()
            r = rng.random()
            if r < 0.0008:
                yield DemoRecord(
                    "view",
                    key,
                    [b"{not json", orjson.dumps({**base, "group_id": None}), b"[]"][i % 3],
                    "dead_letter",
                )
            elif r < 0.0015 and self._money:
                again = rng.choice(self._money)
                yield DemoRecord(again.topic_kind, again.key, again.value, "duplicate")
            elif r < 0.89:
                yield DemoRecord("view", key, orjson.dumps(base), "count")
            elif r < 0.988:
                base["subscriber_id"] = f"sub-{rng.randrange(5000)}"
                yield DemoRecord("click", key, orjson.dumps(base), "count")
            else:
                yield self._money_event(base, key, downgrade=r > 0.998)

    def _money_event(self, base: dict[str, object], key: bytes, downgrade: bool) -> DemoRecord:
        rng = self.rng
        (src, src_mrr), (dst, dst_mrr) = sorted(rng.sample(PLANS, 2), key=lambda p: p[1])
        if downgrade:
            (src, src_mrr), (dst, dst_mrr) = (dst, dst_mrr), (src, src_mrr)
        doc = {
            **base,
            "subscriber_id": f"sub-{rng.randrange(5000)}",
            "from": {
                "product_ids": [src.split("-")[1]],
                "selling_plan_id": src,
                "mrr_minor": src_mrr,
            },
            "to": {
                "product_ids": [dst.split("-")[1], "addon"][: 1 + (rng.random() < 0.3)],
                "selling_plan_id": dst,
                "mrr_minor": dst_mrr,
            },
            "revenue_minor": max(0, dst_mrr - src_mrr) if not downgrade else 0,
            "currency": "EUR" if rng.random() < 0.4 else "USD",
        }
        if not downgrade:
            doc["order_id"] = f"order-{base['event_id']}"
        if rng.random() < 0.1:  # unattributed: no banner led to it
            doc.pop("group_id")
            doc.pop("variation_id")
        record = DemoRecord(
            "downgrade" if downgrade else "upgrade", key, orjson.dumps(doc), "count"
        )
        self._money.append(record)
        return record


async def produce_demo(
    bootstrap: KafkaTarget,
    topics: Topics,
    *,
    rate: float | None,
    count: int,
    seed: int = 7,
    shops: int = 5,
    days: int = 14,
    backfill: int = 20_000,
    partitions: int = 8,
) -> int:
    """Settings and snapshots, then ``count`` events: all historical when ``rate`` is None, else
    a historical backfill followed by live events at ``rate`` per second."""
    gen = DemoGenerator(seed=seed, shops=shops, days=days)
    await ensure_topics(bootstrap, topics, partitions)
    producer = make_producer(bootstrap)
    await producer.start()
    sent = 0
    try:
        for record in [*gen.settings(), *gen.subscriber_snapshots()]:
            await producer.send(record.topic(topics), key=record.key, value=record.value)
        history = count if rate is None else min(count, backfill)
        sent = await send_all(
            producer, ((r.topic(topics), r.key, r.value) for r in gen.events(history))
        )
        if rate is not None:
            started, live = time.monotonic(), 0
            while sent < count:
                for record in gen.events(min(100, count - sent), live=True):
                    await producer.send(record.topic(topics), key=record.key, value=record.value)
                    sent += 1
                    live += 1
                await asyncio.sleep(max(0.0, started + live / rate - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent
