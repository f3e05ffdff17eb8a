"""The contract's validator: bytes from Kafka to a valid event, or the reason why not.

``check(kind, key, raw, latest, oldest, retention_days)`` and its convenience form
``decode(kind, key, raw, now)`` hold no state between calls (the worker's cached fast path is
:class:`schemas.decoder.Decoder`, which falls back to ``check``). Never raises.

Reasons are the contract's codes: ``too_large``, ``invalid_json``,
``bad_type:<field>``, ``missing_field:<field>``, ``bad_value:<field>``, ``key_mismatch``,
``future_timestamp``, ``too_old``, ``tombstone``. Checks run in that order: size, JSON,
fields (types, then rules), key, then time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from schemas.fields import (
    MAX_ID,
    Reject,
    amount,
    attribution,
    check_key,
    currency,
    get,
    plan,
    required_text,
    shop_id,
    text,
    timestamp,
)
from schemas.models import (
    BannerClick,
    BannerView,
    Event,
    ExperimentSettings,
    Kind,
    PlanChange,
    Rejected,
    ShopSettings,
    SubscriberSnapshot,
)
from schemas.zones import zone

MAX_BYTES = 64 * 1024
MAX_MDE = 10.0  # a minimum detectable effect of +1,000 %
MAX_WEIGHT = 1e9  # a shop's traffic weights: any 20 of them sum to a finite number
FUTURE_TOLERANCE = timedelta(minutes=5)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def decode(
    kind: Kind, key: bytes | None, raw: bytes | None, now: datetime, retention_days: int = 800
) -> Event | Rejected:
    """One message against the contract, ``now`` as the batch's time. The worker's hot path is
    :class:`schemas.decoder.Decoder`, which answers the same and is faster for views and clicks."""
    return check(
        kind, key, raw, now + FUTURE_TOLERANCE, now - timedelta(days=retention_days), retention_days
    )


def check(
    kind: Kind,
    key: bytes | None,
    raw: bytes | None,
    latest: datetime,
    oldest: datetime,
    retention_days: int,
) -> Event | Rejected:
    """The validator: every field checked in order, the first failure named. An ``occurred_at``
    must lie in ``[oldest, latest]`` (``retention_days`` only words the ``too_old`` detail)."""
    if raw is None:
        return Rejected("tombstone", "the message has no value")
    if len(raw) > MAX_BYTES:
        return Rejected("too_large", f"{len(raw)} bytes > {MAX_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected("invalid_json", str(exc)[:200])
    except RecursionError:
        return Rejected("invalid_json", "nesting too deep")
    if not isinstance(doc, dict):
        return Rejected("bad_type:event", "the value must be a JSON object")
    try:
        event = _BUILDERS[kind](doc)
        check_key(key, event.shop_id)
        occurred = getattr(event, "occurred_at", None)
        if occurred is not None:
            if occurred > latest:
                raise Reject("future_timestamp", f"{occurred.isoformat()} is after now + 5 min")
            if occurred < oldest:
                raise Reject("too_old", f"older than {retention_days} days")
        return event
    except Reject as rej:
        return Rejected(rej.reason, rej.detail)
    except (RecursionError, OverflowError, ValueError) as exc:  # defensive: never raise
        return Rejected("invalid_json", str(exc)[:200])


# -- kinds --------------------------------------------------------------------------------------
def _banner(doc: dict[str, Any]) -> tuple[str, str, datetime, str, str]:
    """What a view and a click both carry, checked in this order: event id, shop, time, and
    the group and variation they are attributed to."""
    event_id = required_text(doc, "event_id")
    shop = shop_id(doc)
    occurred = timestamp(doc)
    group, variation = attribution(doc, required=True)
    assert group is not None and variation is not None
    return event_id, shop, occurred, group, variation


def _view(doc: dict[str, Any]) -> BannerView:
    return BannerView(*_banner(doc), text(doc, "subscriber_id", required=False))


def _click(doc: dict[str, Any]) -> BannerClick:
    return BannerClick(*_banner(doc), required_text(doc, "subscriber_id"))


def _plan_change(doc: dict[str, Any], kind: Kind) -> PlanChange:
    upgrade = kind is Kind.UPGRADE
    event_id = required_text(doc, "event_id")
    shop = shop_id(doc)
    occurred = timestamp(doc)
    group, variation = attribution(doc, required=False)
    subscriber = required_text(doc, "subscriber_id")
    order = text(doc, "order_id", required=upgrade)
    src, dst = plan(doc, "from"), plan(doc, "to")
    revenue = amount(doc, "revenue_minor", required=upgrade) or 0
    return PlanChange(
        kind,
        event_id,
        shop,
        occurred,
        group,
        variation,
        subscriber,
        order,
        src,
        dst,
        revenue,
        currency(doc),
    )


def _shop(doc: dict[str, Any]) -> ShopSettings:
    shop = shop_id(doc)
    tz = get(doc, "timezone", "", True)
    if type(tz) is not str:
        raise Reject("bad_type:timezone", "expected an IANA name")
    if (
        not tz
        or len(tz) > 64
        or tz.startswith(("/", "."))
        or ".." in tz
        or (zone(tz).key != tz and tz != "UTC")
    ):
        raise Reject("bad_value:timezone", "unknown IANA time zone")
    week_start = get(doc, "week_start", "", False) or "monday"
    if type(week_start) is not str:
        raise Reject("bad_type:week_start", "expected monday or sunday")
    if week_start not in ("monday", "sunday"):
        raise Reject("bad_value:week_start", "expected monday or sunday")
    return ShopSettings(shop, tz, week_start, currency(doc), _split_weights(doc), _experiments(doc))


def _experiments(doc: dict[str, Any]) -> dict[str, ExperimentSettings]:
    """Optional ``experiments: {group_id: {"start"?: "YYYY-MM-DD", "mde"?: number}}``, the
    minimum detectable effect above 0 and at most MAX_MDE."""
    raw = doc.get("experiments")
    if raw is None:
        return {}
    if type(raw) is not dict:
        raise Reject("bad_type:experiments", "expected {group_id: {start, mde}}")
    out = {}
    for group_id, spec in raw.items():
        if not 0 < len(group_id) <= MAX_ID or type(spec) is not dict:
            raise Reject("bad_value:experiments", "expected {group_id: {start, mde}}")
        start, mde = spec.get("start"), spec.get("mde")
        try:
            day = None if start is None else date.fromisoformat(start)
        except (TypeError, ValueError):
            day = None
        if start is not None and (type(start) is not str or not _DATE.fullmatch(start) or not day):
            raise Reject("bad_value:experiments", "start is a date YYYY-MM-DD")
        if mde is not None and not (type(mde) in (int, float) and 0 < mde <= MAX_MDE):
            raise Reject("bad_value:experiments", "mde is a number above 0, at most 10")
        out[group_id] = ExperimentSettings(day, None if mde is None else float(mde))
    return out


def _split_weights(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Optional ``groups: {group_id: {variation_id: weight}}``: ids of 1-128 characters,
    weights numbers from 0 to MAX_WEIGHT, at least one of a group's weights > 0. (Weights of
    1e308 once passed: their sum was infinite and the sample-ratio check divided by it.)"""
    raw = doc.get("groups")
    if raw is None:
        return {}
    if type(raw) is not dict:
        raise Reject("bad_type:groups", "expected {group_id: {variation_id: weight}}")
    out: dict[str, dict[str, float]] = {}
    for group_id, weights in raw.items():
        if not 0 < len(group_id) <= MAX_ID or type(weights) is not dict or not weights:
            raise Reject("bad_value:groups", "expected {group_id: {variation_id: weight}}")
        parsed = {}
        for variation_id, weight in weights.items():
            ok = type(weight) in (int, float) and 0 <= weight <= MAX_WEIGHT
            if not 0 < len(variation_id) <= MAX_ID or not ok:
                raise Reject(
                    "bad_value:groups", "weights are numbers from 0 to 1e9 per variation id"
                )
            parsed[variation_id] = float(weight)
        if not any(parsed.values()):
            raise Reject("bad_value:groups", "a group needs a weight above 0")
        out[group_id] = parsed
    return out


def _subscribers(doc: dict[str, Any]) -> SubscriberSnapshot:
    shop = shop_id(doc)
    value = get(doc, "date", "", True)
    if type(value) is not str:
        raise Reject("bad_type:date", "expected YYYY-MM-DD")
    if not _DATE.fullmatch(value):
        raise Reject("bad_value:date", "expected YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Reject("bad_value:date", "not a calendar date") from None
    count = amount(doc, "active_subscribers")
    assert count is not None
    return SubscriberSnapshot(shop, day, count)


_BUILDERS: dict[Kind, Callable[[dict[str, Any]], Event]] = {
    Kind.VIEW: _view,
    Kind.CLICK: _click,
    Kind.UPGRADE: lambda d: _plan_change(d, Kind.UPGRADE),
    Kind.DOWNGRADE: lambda d: _plan_change(d, Kind.DOWNGRADE),
    Kind.SHOP: _shop,
    Kind.SUBSCRIBERS: _subscribers,
}
