"""A/B traffic with known arms for the decision tests: views and upgrades per variation, all
timed a few minutes before ``now`` so they land in the shop's current day or the one before."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import orjson

Message = tuple[str, bytes, bytes]


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shop_message(
    shop: str, tz: str, currency: str, groups: Mapping[str, Mapping[str, float]] | None = None
) -> Message:
    doc: dict[str, object] = {
        "shop_id": shop,
        "timezone": tz,
        "week_start": "monday",
        "currency": currency,
    }
    if groups:
        doc["groups"] = groups
    return ("shop", shop.encode(), orjson.dumps(doc))


def view(shop: str, event_id: str, at: datetime, group: str, variation: str) -> Message:
    body = {
        "event_id": event_id,
        "shop_id": shop,
        "occurred_at": iso(at),
        "group_id": group,
        "variation_id": variation,
    }
    return ("view", shop.encode(), orjson.dumps(body))


def upgrade(
    shop: str,
    event_id: str,
    at: datetime,
    group: str,
    variation: str,
    *,
    plans: tuple[str, str] = ("monthly", "annual"),
    revenue_minor: int = 1200,
    currency: str = "NZD",
) -> Message:
    body = {
        "event_id": event_id,
        "shop_id": shop,
        "occurred_at": iso(at),
        "group_id": group,
        "variation_id": variation,
        "subscriber_id": f"sub-{event_id}",
        "order_id": f"order-{event_id}",
        "from": {"product_ids": ["pro"], "selling_plan_id": plans[0], "mrr_minor": 1000},
        "to": {"product_ids": ["pro"], "selling_plan_id": plans[1], "mrr_minor": 1500},
        "revenue_minor": revenue_minor,
        "currency": currency,
    }
    return ("upgrade", shop.encode(), orjson.dumps(body))


def arms(
    shop: str,
    group: str,
    counts: Mapping[str, tuple[int, int]],
    now: datetime,
    currency: str = "NZD",
) -> list[Message]:
    """For each variation (views, conversions): that many views and upgrades, spread over the
    10 minutes before ``now``."""
    out = []
    for variation, (views, conversions) in counts.items():
        for i in range(views):
            at = now - timedelta(minutes=10) + timedelta(seconds=i * 540 / max(1, views))
            out.append(view(shop, f"{group}-{variation}-v{i}", at, group, variation))
        for i in range(conversions):
            at = now - timedelta(minutes=9) + timedelta(seconds=i * 480 / max(1, conversions))
            out.append(
                upgrade(shop, f"{group}-{variation}-u{i}", at, group, variation, currency=currency)
            )
    return out
