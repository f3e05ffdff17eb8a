"""Seeded mixed traffic for the end-to-end tests: shop settings, then views >> clicks >> money,
duplicates and malformed messages, spread over days that cross a DST switch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson

from tests.support.dates import iso_instant, last_offset_change
from tests.support.expected_state import Sent

SHOPS = {"shop-utc": "UTC", "shop-ny": "America/New_York", "shop-in": "Asia/Kolkata"}

# New York's latest DST switch at least four days old (zoneinfo: a Sunday in March or November),
# so the days around it have passed; the traffic runs from two days before it (UTC midnight) to
# now. Read once per session, so every test of a run sees the same days.
DST_SWITCH = last_offset_change(SHOPS["shop-ny"], datetime.now(UTC) - timedelta(days=4))
SWITCH_DAY = DST_SWITCH.astimezone(ZoneInfo(SHOPS["shop-ny"])).date()
FIRST_DAY = SWITCH_DAY - timedelta(days=2)


def settings_messages(shops: dict[str, str] = SHOPS) -> list[tuple[str, bytes, bytes]]:
    return [
        (
            "shop",
            shop.encode(),
            orjson.dumps(
                {"shop_id": shop, "timezone": tz, "week_start": "monday", "currency": "USD"}
            ),
        )
        for shop, tz in shops.items()
    ]


def mixed_events(
    n: int,
    seed: int = 1,
    now: datetime | None = None,
    shops: dict[str, str] = SHOPS,
    bad_every: int = 997,
) -> list[Sent]:
    """``n`` messages: ~85% views, ~10% clicks, ~3% upgrades, ~1% downgrades, the rest resent
    upgrades (duplicates) and, every ``bad_every``, a malformed message."""
    rng = random.Random(seed)
    end = (now or datetime.now(UTC)) - timedelta(minutes=1)
    start = datetime.combine(FIRST_DAY, time(), UTC)  # before New York's DST switch
    future = iso_instant(end + timedelta(days=30))  # past the 5 minutes of clock skew allowed
    span = (end - start).total_seconds()
    names = list(shops)
    out: list[Sent] = []
    money: list[Sent] = []
    for i in range(n):
        shop = names[i % len(names)]
        at = start + timedelta(seconds=rng.random() * span)
        group = f"g{rng.randrange(4)}"
        variation = "ab"[rng.randrange(2)]
        base = {"event_id": f"{seed}-{i}", "shop_id": shop, "occurred_at": iso_instant(at)}
        if bad_every and i % bad_every == bad_every - 1:
            bad = [
                b"{oops",
                orjson.dumps({**base, "group_id": group}),
                orjson.dumps(
                    {
                        **base,
                        "occurred_at": future,
                        "group_id": group,
                        "variation_id": variation,
                    }
                ),
            ][i % 3]
            out.append(Sent("view", shop.encode(), bad, valid=False))
            continue
        r = rng.random()
        if r < 0.85:
            view = {**base, "group_id": group, "variation_id": variation}
            if rng.random() < 0.7:  # the others are views of visitors not known as subscribers
                view["subscriber_id"] = f"sub-{rng.randrange(500)}"
            out.append(Sent("view", shop.encode(), orjson.dumps(view)))
        elif r < 0.95:
            out.append(
                Sent(
                    "click",
                    shop.encode(),
                    orjson.dumps(
                        {
                            **base,
                            "group_id": group,
                            "variation_id": variation,
                            "subscriber_id": f"sub-{rng.randrange(500)}",
                        }
                    ),
                )
            )
        elif r < 0.985 or not money:
            kind = "upgrade" if r < 0.975 or not money else "downgrade"
            lo, hi = sorted((rng.randrange(500, 3000), rng.randrange(500, 3000)))
            src, dst = (lo, hi) if kind == "upgrade" else (hi, lo)
            doc = {
                **base,
                "subscriber_id": f"sub-{rng.randrange(500)}",
                "from": {
                    "product_ids": ["basic"],
                    "selling_plan_id": f"plan-{src // 1000}",
                    "mrr_minor": src,
                },
                "to": {
                    "product_ids": ["pro"],
                    "selling_plan_id": f"plan-{dst // 1000}",
                    "mrr_minor": dst,
                },
                "revenue_minor": rng.randrange(0, 5000),
                "currency": rng.choice(["USD", "EUR"]),
            }
            if kind == "upgrade":
                doc["order_id"] = f"o-{i}"
            if rng.random() < 0.8:
                doc["group_id"], doc["variation_id"] = group, variation
            sent = Sent(kind, shop.encode(), orjson.dumps(doc))
            money.append(sent)
            out.append(sent)
        else:
            out.append(rng.choice(money))  # a re-sent upgrade or downgrade: same bytes
    return out
