"""Production's shape of traffic, for the live-shape bench rows.

10,000 shops, each with 1-3 groups of 2-3 variations; shops drawn Zipf-skewed (weight 1/rank: the
largest shop sends ~10 % of the events, half the shops fewer than 1 in 50,000); every event is
stamped at the moment it is sent, so it counts on its shop's current local day, as live traffic
does. Events carry the placeholder :data:`STAMP`; whoever sends them puts the current second in
(:func:`restamp`), so a pool built once can be re-sent for as long as a run lasts. The mix of kinds
is the bench stream's: 90 % views, 9.5 % clicks, 0.5 % upgrades.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from bench.data import TIMEZONES

STAMP = b"1970-01-01T00:00:00Z"  # replaced by the send time
_STAMP_FIELD = b'"occurred_at":"' + STAMP + b'"'


@dataclass(frozen=True, slots=True)
class LiveShop:
    shop_id: str
    timezone: str
    cells: tuple[tuple[str, str], ...]  # (group, variation): 1-3 groups x 2-3 variations


def live_shops(n: int, seed: int = 1) -> list[LiveShop]:
    rng = random.Random(seed)
    shops = []
    for i in range(n):
        cells = tuple(
            (f"g{g}", f"v{v}") for g in range(rng.randint(1, 3)) for v in range(rng.randint(2, 3))
        )
        shops.append(LiveShop(f"live-{i:05d}", TIMEZONES[i % len(TIMEZONES)], cells))
    return shops


def settings(shops: list[LiveShop]) -> list[tuple[str, bytes, bytes]]:
    return [
        (
            "shops",
            s.shop_id.encode(),
            orjson.dumps(
                {
                    "shop_id": s.shop_id,
                    "timezone": s.timezone,
                    "week_start": "monday",
                    "currency": "USD",
                }
            ),
        )
        for s in shops
    ]


def events(n: int, shops: list[LiveShop], seed: int = 1) -> Iterator[tuple[str, bytes, bytes]]:
    """(topic kind, key, value) with ``occurred_at`` = :data:`STAMP`; kinds are views, clicks
    and upgrades. Event ids start ``b<seed>-`` (the traffic sender renames re-sent upgrades)."""
    rng = random.Random(seed)
    cum = list(itertools.accumulate(1 / rank for rank in range(1, len(shops) + 1)))
    picks = rng.choices(shops, cum_weights=cum, k=n)
    for i, shop in enumerate(picks):
        group, variation = rng.choice(shop.cells)
        doc: dict[str, object] = {
            "event_id": f"b{seed}-{i}",
            "shop_id": shop.shop_id,
            "occurred_at": STAMP.decode(),
            "group_id": group,
            "variation_id": variation,
        }
        r = rng.random()
        if r < 0.90:
            yield "views", shop.shop_id.encode(), orjson.dumps(doc)
            continue
        doc["subscriber_id"] = f"sub-{rng.randrange(100_000)}"
        if r < 0.995:
            yield "clicks", shop.shop_id.encode(), orjson.dumps(doc)
            continue
        mrr = rng.choice([1000, 1500, 2500])
        doc |= {
            "order_id": f"o-{i}",
            "from": {"product_ids": ["basic"], "selling_plan_id": "basic", "mrr_minor": mrr},
            "to": {"product_ids": ["pro"], "selling_plan_id": "pro", "mrr_minor": mrr + 1000},
            "revenue_minor": 1000,
            "currency": "USD",
        }
        yield "upgrades", shop.shop_id.encode(), orjson.dumps(doc)


def current_stamp(now_s: float | None = None) -> bytes:
    """The ``occurred_at`` field of an event sent at ``now_s`` (default: now)."""
    second = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s))
    return b'"occurred_at":"' + second.encode() + b'"'


def restamp(value: bytes, stamp: bytes) -> bytes:
    """``value`` with its placeholder ``occurred_at`` replaced by ``stamp`` (current_stamp())."""
    return value.replace(_STAMP_FIELD, stamp, 1)
