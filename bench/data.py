"""The benchmark's seeded event stream: 50 shops, 50 groups x 4 variations, views >> clicks,
5 % of clicks upgrade, two currencies. Fast to generate (it is not what we measure)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

TIMEZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Auckland"]


def shops(n: int) -> list[tuple[str, str]]:
    return [(f"bench-{i:05d}", TIMEZONES[i % len(TIMEZONES)]) for i in range(n)]


def settings(n_shops: int) -> list[tuple[str, bytes, bytes]]:
    return [
        (
            "shops",
            s.encode(),
            orjson.dumps({"shop_id": s, "timezone": tz, "week_start": "monday", "currency": "USD"}),
        )
        for s, tz in shops(n_shops)
    ]


def events(
    n: int,
    n_shops: int = 50,
    groups: int = 50,
    variations: int = 4,
    days: int = 30,
    seed: int = 1,
    now: datetime | None = None,
    view_subscribers: int = 0,
) -> Iterator[tuple[str, bytes, bytes]]:
    """(topic kind, key, value): kinds are views, clicks, upgrades. With ``view_subscribers``,
    each view carries one of that many subscriber ids (an exposure in the experiments)."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)) - timedelta(minutes=1)
    names = [s for s, _tz in shops(n_shops)]
    span = days * 86400
    ts_cache: dict[int, str] = {}
    for i in range(n):
        shop = names[rng.randrange(n_shops)]
        second = rng.randrange(span)
        ts = ts_cache.get(second)
        if ts is None:
            ts = (
                (end - timedelta(seconds=second))
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z")
            )
            if len(ts_cache) < 200_000:
                ts_cache[second] = ts
        doc: dict[str, object] = {
            "event_id": f"b{seed}-{i}",
            "shop_id": shop,
            "occurred_at": ts,
            "group_id": f"group-{rng.randrange(groups):02d}",
            "variation_id": f"var-{rng.randrange(variations)}",
        }
        r = rng.random()
        if r < 0.90:
            if view_subscribers:
                doc["subscriber_id"] = f"sub-{rng.randrange(view_subscribers)}"
            yield "views", shop.encode(), orjson.dumps(doc)
        elif r < 0.995:
            doc["subscriber_id"] = f"sub-{rng.randrange(100_000)}"
            yield "clicks", shop.encode(), orjson.dumps(doc)
        else:
            mrr = rng.choice([1000, 1500, 2500])
            doc.update(
                {
                    "subscriber_id": f"sub-{rng.randrange(100_000)}",
                    "order_id": f"o-{i}",
                    "from": {
                        "product_ids": ["basic"],
                        "selling_plan_id": "basic",
                        "mrr_minor": mrr,
                    },
                    "to": {
                        "product_ids": ["pro"],
                        "selling_plan_id": "pro",
                        "mrr_minor": mrr + 1000,
                    },
                    "revenue_minor": 1000,
                    "currency": rng.choice(["USD", "EUR"]),
                }
            )
            yield "upgrades", shop.encode(), orjson.dumps(doc)


def with_dead_letters(
    records: Iterator[tuple[str, bytes, bytes]], every: int = 10, now: datetime | None = None
) -> Iterator[tuple[str, bytes, bytes]]:
    """``records`` with every ``every``-th one made bad, in turn: not JSON, a field missing, a
    future and a too-old timestamp, a key that is not its shop. Each ends as a dead letter."""
    at = now or datetime.now(UTC)
    future = (at + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    too_old = (at - timedelta(days=3000)).isoformat().replace("+00:00", "Z")
    for i, (kind, key, value) in enumerate(records):
        if i % every != every - 1:
            yield kind, key, value
            continue
        doc = orjson.loads(value)
        how = (i // every) % 5
        if how == 0:
            yield kind, key, value[: len(value) // 2]
        elif how == 1:
            yield kind, key, orjson.dumps({k: v for k, v in doc.items() if k != "event_id"})
        elif how == 2:
            yield kind, key, orjson.dumps({**doc, "occurred_at": future})
        elif how == 3:
            yield kind, key, orjson.dumps({**doc, "occurred_at": too_old})
        else:
            yield kind, b"not-" + key, value
