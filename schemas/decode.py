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

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from schemas.models import (
    BannerClick,
    BannerView,
    Event,
    Kind,
    Plan,
    PlanChange,
    Rejected,
    ShopSettings,
    SubscriberSnapshot,
)
from schemas.zones import zone

MAX_BYTES = 64 * 1024
MAX_ID = 128
MAX_PRODUCTS = 100
# The largest amount an event may carry (minor units, and subscriber counts): 10^12. A Redis
# counter (int64) then holds 9.2 million maximal events of one shop, day and field, and every
# amount is exact in a JSON double. Larger values are dead-lettered as ``bad_value:<field>``.
MAX_AMOUNT = 10**12
FUTURE_TOLERANCE = timedelta(minutes=5)

_SHOP_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+\-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Reject(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail


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
        _check_key(key, event.shop_id)
        occurred = getattr(event, "occurred_at", None)
        if occurred is not None:
            if occurred > latest:
                raise _Reject("future_timestamp", f"{occurred.isoformat()} is after now + 5 min")
            if occurred < oldest:
                raise _Reject("too_old", f"older than {retention_days} days")
        return event
    except _Reject as rej:
        return Rejected(rej.reason, rej.detail)
    except (RecursionError, OverflowError, ValueError) as exc:  # defensive: never raise
        return Rejected("invalid_json", str(exc)[:200])


# -- fields -------------------------------------------------------------------------------------
def _get(doc: dict[str, Any], name: str, path: str, required: bool) -> Any:
    value = doc.get(name)
    if value is None and required:
        raise _Reject(f"missing_field:{path}{name}")
    return value


def _text(doc: dict[str, Any], name: str, path: str = "", required: bool = True) -> str | None:
    value = _get(doc, name, path, required)
    if value is None:
        return None
    if type(value) is not str:
        raise _Reject(f"bad_type:{path}{name}", "expected a string")
    if not 0 < len(value) <= MAX_ID:
        raise _Reject(f"bad_value:{path}{name}", f"length must be 1-{MAX_ID}")
    return value


def _req_text(doc: dict[str, Any], name: str, path: str = "") -> str:
    value = _text(doc, name, path)
    assert value is not None
    return value


def _int(doc: dict[str, Any], name: str, path: str = "", required: bool = True) -> int | None:
    value = _get(doc, name, path, required)
    if value is None:
        return None
    if type(value) is not int:
        raise _Reject(f"bad_type:{path}{name}", "expected an integer")
    if not 0 <= value <= MAX_AMOUNT:
        raise _Reject(f"bad_value:{path}{name}", f"must be between 0 and {MAX_AMOUNT}")
    return value


def valid_shop_id(value: str) -> bool:
    """Only ``[A-Za-z0-9._:-]``, 1-128 characters."""
    return _SHOP_ID.fullmatch(value) is not None


def _shop_id(doc: dict[str, Any]) -> str:
    value = _req_text(doc, "shop_id")
    if not valid_shop_id(value):
        raise _Reject("bad_value:shop_id", "only [A-Za-z0-9._:-] allowed")
    return value


def canonical_utc(value: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.mmmZ``, the shapes almost every producer
    sends: the regex can be skipped, ``fromisoformat`` still rejects anything but digits."""
    n = len(value)
    return (
        (n == 20 or (n == 24 and value[19] == "."))
        and value[-1] == "Z"
        and value[4] == "-"
        and value[7] == "-"
        and value[10] == "T"
        and value[13] == ":"
        and value[16] == ":"
    )


def _timestamp(doc: dict[str, Any], name: str = "occurred_at") -> datetime:
    value = _get(doc, name, "", True)
    if type(value) is str and canonical_utc(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise _Reject(f"bad_value:{name}", str(exc)) from None
    if type(value) is not str:
        raise _Reject(f"bad_type:{name}", "expected an RFC 3339 string")
    if len(value) > 40 or not _RFC3339.fullmatch(value):
        raise _Reject(f"bad_value:{name}", "expected RFC 3339 with Z or an offset")
    try:
        return datetime.fromisoformat(value.upper() if value[-1] in "zZ" else value)
    except ValueError as exc:
        raise _Reject(f"bad_value:{name}", str(exc)) from None


def parse_timestamp(value: str) -> datetime | None:
    """An ``occurred_at`` text as the validator reads it, or None where it rejects it."""
    try:
        return _timestamp({"occurred_at": value})
    except _Reject:
        return None


def _currency(doc: dict[str, Any]) -> str:
    value = _get(doc, "currency", "", True)
    if type(value) is not str:
        raise _Reject("bad_type:currency", "expected a string")
    if not _CURRENCY.fullmatch(value):
        raise _Reject("bad_value:currency", "expected 3 upper-case letters (ISO 4217)")
    return value


def _check_key(key: bytes | None, shop_id: str) -> None:
    if key is None:
        return
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reject("key_mismatch", "the key is not UTF-8") from None
    if text != shop_id:
        raise _Reject("key_mismatch", "the message key differs from shop_id")


def _attribution(doc: dict[str, Any], required: bool) -> tuple[str | None, str | None]:
    group = _text(doc, "group_id", required=required)
    variation = _text(doc, "variation_id", required=group is not None)
    if group is None and variation is not None:
        raise _Reject("missing_field:group_id", "variation_id needs group_id")
    return group, variation


def _plan(doc: dict[str, Any], name: str) -> Plan:
    value = _get(doc, name, "", True)
    if not isinstance(value, dict):
        raise _Reject(f"bad_type:{name}", "expected an object")
    path = f"{name}."
    products = _get(value, "product_ids", path, True)
    if not isinstance(products, list):
        raise _Reject(f"bad_type:{path}product_ids", "expected a list of strings")
    if len(products) > MAX_PRODUCTS:
        raise _Reject(f"bad_value:{path}product_ids", f"at most {MAX_PRODUCTS} products")
    for p in products:
        if type(p) is not str:
            raise _Reject(f"bad_type:{path}product_ids", "expected a list of strings")
        if not 0 < len(p) <= MAX_ID:
            raise _Reject(f"bad_value:{path}product_ids", f"ids must be 1-{MAX_ID} chars")
    plan_id = _req_text(value, "selling_plan_id", path)
    mrr = _int(value, "mrr_minor", path)
    assert mrr is not None
    return Plan(tuple(products), plan_id, mrr)


# -- kinds --------------------------------------------------------------------------------------
def _view(doc: dict[str, Any]) -> BannerView:
    event_id = _req_text(doc, "event_id")
    shop = _shop_id(doc)
    occurred = _timestamp(doc)
    group, variation = _attribution(doc, required=True)
    assert group is not None and variation is not None
    return BannerView(
        event_id, shop, occurred, group, variation, _text(doc, "subscriber_id", required=False)
    )


def _click(doc: dict[str, Any]) -> BannerClick:
    event_id = _req_text(doc, "event_id")
    shop = _shop_id(doc)
    occurred = _timestamp(doc)
    group, variation = _attribution(doc, required=True)
    assert group is not None and variation is not None
    return BannerClick(event_id, shop, occurred, group, variation, _req_text(doc, "subscriber_id"))


def _plan_change(doc: dict[str, Any], kind: Kind) -> PlanChange:
    upgrade = kind is Kind.UPGRADE
    event_id = _req_text(doc, "event_id")
    shop = _shop_id(doc)
    occurred = _timestamp(doc)
    group, variation = _attribution(doc, required=False)
    subscriber = _req_text(doc, "subscriber_id")
    order = _text(doc, "order_id", required=upgrade)
    src, dst = _plan(doc, "from"), _plan(doc, "to")
    revenue = _int(doc, "revenue_minor", required=upgrade) or 0
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
        _currency(doc),
    )


def _shop(doc: dict[str, Any]) -> ShopSettings:
    shop = _shop_id(doc)
    tz = _get(doc, "timezone", "", True)
    if type(tz) is not str:
        raise _Reject("bad_type:timezone", "expected an IANA name")
    if (
        not tz
        or len(tz) > 64
        or tz.startswith(("/", "."))
        or ".." in tz
        or (zone(tz).key != tz and tz != "UTC")
    ):
        raise _Reject("bad_value:timezone", "unknown IANA time zone")
    week_start = _get(doc, "week_start", "", False) or "monday"
    if type(week_start) is not str:
        raise _Reject("bad_type:week_start", "expected monday or sunday")
    if week_start not in ("monday", "sunday"):
        raise _Reject("bad_value:week_start", "expected monday or sunday")
    return ShopSettings(shop, tz, week_start, _currency(doc), _split_weights(doc))


def _split_weights(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Optional ``groups: {group_id: {variation_id: weight}}``: ids of 1-128 characters,
    weights finite numbers >= 0, at least one of a group's weights > 0."""
    raw = doc.get("groups")
    if raw is None:
        return {}
    if type(raw) is not dict:
        raise _Reject("bad_type:groups", "expected {group_id: {variation_id: weight}}")
    out: dict[str, dict[str, float]] = {}
    for group_id, weights in raw.items():
        if not 0 < len(group_id) <= MAX_ID or type(weights) is not dict or not weights:
            raise _Reject("bad_value:groups", "expected {group_id: {variation_id: weight}}")
        parsed = {}
        for variation_id, weight in weights.items():
            ok = type(weight) in (int, float) and math.isfinite(weight) and weight >= 0
            if not 0 < len(variation_id) <= MAX_ID or not ok:
                raise _Reject("bad_value:groups", "weights are numbers >= 0 per variation id")
            parsed[variation_id] = float(weight)
        if not any(parsed.values()):
            raise _Reject("bad_value:groups", "a group needs a weight above 0")
        out[group_id] = parsed
    return out


def _subscribers(doc: dict[str, Any]) -> SubscriberSnapshot:
    shop = _shop_id(doc)
    value = _get(doc, "date", "", True)
    if type(value) is not str:
        raise _Reject("bad_type:date", "expected YYYY-MM-DD")
    if not _DATE.fullmatch(value):
        raise _Reject("bad_value:date", "expected YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _Reject("bad_value:date", "not a calendar date") from None
    count = _int(doc, "active_subscribers")
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
