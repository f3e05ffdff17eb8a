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


def view(
    shop: str,
    event_id: str,
    at: datetime,
    group: str,
    variation: str,
    subscriber: str | None = None,
) -> Message:
    body = {
        "event_id": event_id,
        "shop_id": shop,
        "occurred_at": iso(at),
        "group_id": group,
        "variation_id": variation,
    }
    if subscriber is not None:
        body["subscriber_id"] = subscriber
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
    subscriber: str | None = None,
) -> Message:
    body = {
        "event_id": event_id,
        "shop_id": shop,
        "occurred_at": iso(at),
        "group_id": group,
        "variation_id": variation,
        "subscriber_id": subscriber or f"sub-{event_id}",
        "order_id": f"order-{event_id}",
        "from": {"product_ids": ["pro"], "selling_plan_id": plans[0], "mrr_minor": 1000},
        "to": {"product_ids": ["pro"], "selling_plan_id": plans[1], "mrr_minor": 1500},
        "revenue_minor": revenue_minor,
        "currency": currency,
    }
    return ("upgrade", shop.encode(), orjson.dumps(body))


def views_of(counts: Mapping[str, tuple[int, int]]) -> int:
    """The views ``arms`` sends: subscriber i of a variation sees its banner 1 + i % 3 times."""
    return sum(i % 3 + 1 for subscribers, _ in counts.values() for i in range(subscribers))


def arms(
    shop: str,
    group: str,
    counts: Mapping[str, tuple[int, int]],
    now: datetime,
    currency: str = "NZD",
) -> list[Message]:
    """For each variation (subscribers, converted): that many subscribers exposed to it, each
    seeing its banner 1 + i % 3 times, and one upgrade by each of the first ``converted`` of
    them, spread over the 10 minutes before ``now``."""
    out = []
    for variation, (subscribers, converted) in counts.items():
        for i in range(subscribers):
            sub = f"{group}-{variation}-s{i}"
            at = now - timedelta(minutes=10) + timedelta(seconds=i * 540 / max(1, subscribers))
            for j in range(i % 3 + 1):
                out.append(view(shop, f"{sub}-v{j}", at, group, variation, sub))
        for i in range(converted):
            at = now - timedelta(minutes=9) + timedelta(seconds=i * 480 / max(1, converted))
            sub = f"{group}-{variation}-s{i}"
            out.append(
                upgrade(
                    shop,
                    f"{group}-{variation}-u{i}",
                    at,
                    group,
                    variation,
                    currency=currency,
                    subscriber=sub,
                )
            )
    return out
