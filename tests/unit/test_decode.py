"""The decoder: every reason code, valid samples of every kind, and it never raises.

Every case runs through both the contract's validator (``decode``) and the worker's
:class:`Decoder` (its typed fast path, falling back to the validator): they must answer alike."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import decode as validator
from schemas.decoder import Decoder, TimeBounds
from schemas.models import (
    BannerClick,
    BannerView,
    Event,
    Kind,
    PlanChange,
    Rejected,
    ShopSettings,
    SubscriberSnapshot,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
VIEW = {
    "event_id": "e1",
    "shop_id": "s1",
    "occurred_at": "2026-11-24T10:00:00Z",
    "group_id": "g",
    "variation_id": "a",
}
PLAN_A = {"product_ids": ["p1"], "selling_plan_id": "basic", "mrr_minor": 1000}
PLAN_B = {"product_ids": ["p2", "p3"], "selling_plan_id": "pro", "mrr_minor": 2500}
UPGRADE = {
    "event_id": "u1",
    "shop_id": "s1",
    "occurred_at": "2026-11-24T10:00:00+05:30",
    "subscriber_id": "sub",
    "order_id": "o1",
    "from": PLAN_A,
    "to": PLAN_B,
    "revenue_minor": 1500,
    "currency": "USD",
    "group_id": "g",
    "variation_id": "a",
}


DECODER = Decoder()  # shared: its caches of shops and timestamps warm up across the cases


def decode(kind: Kind, key: bytes | None, raw: bytes | None, now: datetime) -> Event | Rejected:
    """The validator's answer, after checking that the worker's Decoder gives the same one."""
    want = validator.decode(kind, key, raw, now)
    assert DECODER.decode(kind, key, raw, TimeBounds.at(now, 800)) == want
    assert Decoder().decode(kind, key, raw, TimeBounds.at(now, 800)) == want
    return want


def run(kind: Kind, doc: Any, key: bytes | None = b"s1") -> Any:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return decode(kind, key, raw, NOW)


def reason(kind: Kind, doc: Any, key: bytes | None = b"s1") -> str:
    result = run(kind, doc, key)
    assert isinstance(result, Rejected), result
    return result.reason


def without(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in names}


def test_valid_view_click_upgrade_downgrade_shop_snapshot() -> None:
    v = run(Kind.VIEW, VIEW)
    assert isinstance(v, BannerView) and v.group_id == "g" and v.subscriber_id is None
    assert v.occurred_at == datetime(2026, 11, 24, 10, tzinfo=UTC)
    c = run(Kind.CLICK, {**VIEW, "subscriber_id": "x", "extra": {"ignored": True}})
    assert isinstance(c, BannerClick) and c.subscriber_id == "x"
    u = run(Kind.UPGRADE, UPGRADE)
    assert isinstance(u, PlanChange) and u.kind is Kind.UPGRADE
    assert u.occurred_at == datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
    assert u.to_plan.product_ids == ("p2", "p3") and u.revenue_minor == 1500
    d = run(
        Kind.DOWNGRADE, without(UPGRADE, "order_id", "revenue_minor", "group_id", "variation_id")
    )
    assert isinstance(d, PlanChange) and d.revenue_minor == 0 and d.group_id is None
    assert d.order_id is None
    s = run(Kind.SHOP, {"shop_id": "s1", "timezone": "America/New_York", "currency": "EUR"})
    assert s == ShopSettings("s1", "America/New_York", "monday", "EUR")
    n = run(Kind.SUBSCRIBERS, {"shop_id": "s1", "date": "2026-11-01", "active_subscribers": 7})
    assert n == SubscriberSnapshot("s1", date(2026, 11, 1), 7)


def test_no_key_is_fine_and_fractional_and_lowercase_timestamps() -> None:
    assert isinstance(run(Kind.VIEW, VIEW, key=None), BannerView)
    for ts in ("2026-11-24T10:00:00.123456Z", "2026-11-24t10:00:00z", "2026-11-24T02:00:00-08:00"):
        assert isinstance(run(Kind.VIEW, {**VIEW, "occurred_at": ts}), BannerView), ts


@pytest.mark.parametrize(
    ("kind", "doc", "key", "want"),
    [
        (Kind.VIEW, b"{nope", b"s1", "invalid_json"),
        (Kind.VIEW, b"\xff\xfe", b"s1", "invalid_json"),
        (Kind.VIEW, b'{"a": NaN}', b"s1", "invalid_json"),
        (Kind.VIEW, b"[" * 2000 + b"]" * 2000, b"s1", "invalid_json"),
        (Kind.VIEW, b"[1]", b"s1", "bad_type:event"),
        (Kind.VIEW, b'"text"', b"s1", "bad_type:event"),
        (Kind.VIEW, without(VIEW, "event_id"), b"s1", "missing_field:event_id"),
        (Kind.VIEW, without(VIEW, "group_id"), b"s1", "missing_field:group_id"),
        (Kind.VIEW, {**VIEW, "variation_id": None}, b"s1", "missing_field:variation_id"),
        (Kind.CLICK, VIEW, b"s1", "missing_field:subscriber_id"),
        (Kind.UPGRADE, without(UPGRADE, "order_id"), b"s1", "missing_field:order_id"),
        (Kind.UPGRADE, without(UPGRADE, "group_id"), b"s1", "missing_field:group_id"),
        (
            Kind.UPGRADE,
            {**UPGRADE, "from": without(PLAN_A, "mrr_minor")},
            b"s1",
            "missing_field:from.mrr_minor",
        ),
        (Kind.UPGRADE, without(UPGRADE, "currency"), b"s1", "missing_field:currency"),
        (Kind.VIEW, {**VIEW, "occurred_at": 5}, b"s1", "bad_type:occurred_at"),
        (Kind.VIEW, {**VIEW, "group_id": 7}, b"s1", "bad_type:group_id"),
        (Kind.UPGRADE, {**UPGRADE, "revenue_minor": 1.5}, b"s1", "bad_type:revenue_minor"),
        (Kind.UPGRADE, {**UPGRADE, "revenue_minor": True}, b"s1", "bad_type:revenue_minor"),
        (Kind.UPGRADE, {**UPGRADE, "to": [1]}, b"s1", "bad_type:to"),
        (
            Kind.UPGRADE,
            {**UPGRADE, "to": {**PLAN_B, "product_ids": "p"}},
            b"s1",
            "bad_type:to.product_ids",
        ),
        (Kind.VIEW, {**VIEW, "occurred_at": "2026-11-24"}, b"s1", "bad_value:occurred_at"),
        (Kind.VIEW, {**VIEW, "occurred_at": "2026-11-24T10:00:00"}, b"s1", "bad_value:occurred_at"),
        (
            Kind.VIEW,
            {**VIEW, "occurred_at": "2026-02-30T10:00:00Z"},
            b"s1",
            "bad_value:occurred_at",
        ),
        (Kind.VIEW, {**VIEW, "shop_id": "bad shop"}, b"bad shop", "bad_value:shop_id"),
        (Kind.VIEW, {**VIEW, "event_id": "x" * 129}, b"s1", "bad_value:event_id"),
        (Kind.VIEW, {**VIEW, "event_id": ""}, b"s1", "bad_value:event_id"),
        (Kind.UPGRADE, {**UPGRADE, "revenue_minor": -1}, b"s1", "bad_value:revenue_minor"),
        (Kind.UPGRADE, {**UPGRADE, "revenue_minor": 2**60}, b"s1", "bad_value:revenue_minor"),
        (Kind.UPGRADE, {**UPGRADE, "currency": "usd"}, b"s1", "bad_value:currency"),
        (
            Kind.SHOP,
            {"shop_id": "s1", "timezone": "Mars/Base", "currency": "USD"},
            b"s1",
            "bad_value:timezone",
        ),
        (
            Kind.SHOP,
            {"shop_id": "s1", "timezone": "../../etc/passwd", "currency": "USD"},
            b"s1",
            "bad_value:timezone",
        ),
        (
            Kind.SHOP,
            {"shop_id": "s1", "timezone": "UTC", "week_start": "friday", "currency": "USD"},
            b"s1",
            "bad_value:week_start",
        ),
        (
            Kind.SUBSCRIBERS,
            {"shop_id": "s1", "date": "2026-02-30", "active_subscribers": 1},
            b"s1",
            "bad_value:date",
        ),
        (
            Kind.SUBSCRIBERS,
            {"shop_id": "s1", "date": "2026-02-01", "active_subscribers": -1},
            b"s1",
            "bad_value:active_subscribers",
        ),
        (Kind.VIEW, VIEW, b"s2", "key_mismatch"),
        (Kind.VIEW, VIEW, b"\xff", "key_mismatch"),
        (Kind.VIEW, {**VIEW, "occurred_at": "2026-11-24T12:05:01Z"}, b"s1", "future_timestamp"),
        (Kind.VIEW, {**VIEW, "occurred_at": "2024-09-15T00:00:00Z"}, b"s1", "too_old"),
        (Kind.VIEW, {**VIEW, "pad": "x" * 70_000}, b"s1", "too_large"),
    ],
)
def test_reason_codes(kind: Kind, doc: Any, key: bytes | None, want: str) -> None:
    assert reason(kind, doc, key) == want


def test_tombstone_and_boundaries() -> None:
    assert decode(Kind.SHOP, b"s1", None, NOW) == Rejected("tombstone", "the message has no value")
    edge = NOW + timedelta(minutes=5)
    assert isinstance(run(Kind.VIEW, {**VIEW, "occurred_at": edge.isoformat()}), BannerView)
    old = NOW - timedelta(days=800) + timedelta(seconds=1)
    assert isinstance(run(Kind.VIEW, {**VIEW, "occurred_at": old.isoformat()}), BannerView)
    empty = orjson.dumps({**VIEW, "pad": ""})
    padded = orjson.dumps({**VIEW, "pad": "x" * (65536 - len(empty))})
    assert len(padded) == 65536
    assert isinstance(decode(Kind.VIEW, b"s1", padded, NOW), BannerView)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=512),
    kind=st.sampled_from(list(Kind)),
    key=st.one_of(st.none(), st.binary(max_size=16)),
)
def test_arbitrary_bytes_never_raise(raw: bytes, kind: Kind, key: bytes | None) -> None:
    result = decode(kind, key, raw, NOW)
    assert isinstance(result, Rejected) or result.shop_id  # an event or a reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.dictionaries(
        st.sampled_from(
            sorted({*UPGRADE, *VIEW, "date", "timezone", "active_subscribers", "week_start"})
        ),
        json_values,
        max_size=12,
    ),
    kind=st.sampled_from(list(Kind)),
)
def test_arbitrary_json_never_raises(doc: dict[str, Any], kind: Kind) -> None:
    result = decode(kind, b"s1", json.dumps(doc).encode(), NOW)
    if isinstance(result, Rejected):
        assert result.reason.split(":")[0] in {
            "invalid_json",
            "bad_type",
            "missing_field",
            "bad_value",
            "key_mismatch",
            "future_timestamp",
            "too_old",
            "too_large",
        }


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(UPGRADE)), value=json_values)
def test_mutating_one_field_of_an_upgrade_never_raises(name: str, value: Any) -> None:
    result = decode(Kind.UPGRADE, b"s1", json.dumps({**UPGRADE, name: value}).encode(), NOW)
    assert isinstance(result, Rejected | PlanChange)


AMOUNT_MAX = 10**12  # contract §2: the documented maximum of every amount


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        (Kind.UPGRADE, ("revenue_minor",)),
        (Kind.UPGRADE, ("from", "mrr_minor")),
        (Kind.UPGRADE, ("to", "mrr_minor")),
        (Kind.DOWNGRADE, ("revenue_minor",)),
        (Kind.SUBSCRIBERS, ("active_subscribers",)),
    ],
)
def test_amounts_up_to_the_documented_maximum_and_not_one_more(
    kind: Kind, path: tuple[str, ...]
) -> None:
    base: dict[str, Any] = (
        {"shop_id": "s1", "date": "2026-11-01", "active_subscribers": 1}
        if kind is Kind.SUBSCRIBERS
        else json.loads(json.dumps(UPGRADE))
    )

    def with_amount(value: int) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(json.dumps(base))
        inner = doc
        for name in path[:-1]:
            inner = inner[name]
        inner[path[-1]] = value
        return doc

    assert not isinstance(run(kind, with_amount(AMOUNT_MAX)), Rejected)
    assert reason(kind, with_amount(AMOUNT_MAX + 1)) == "bad_value:" + ".".join(path)


SHOP = {"shop_id": "s1", "timezone": "UTC", "currency": "EUR"}


def test_shop_split_weights() -> None:
    s = run(Kind.SHOP, {**SHOP, "groups": {"g1": {"control": 1, "d10": 0.5}}})
    assert isinstance(s, ShopSettings) and s.groups == {"g1": {"control": 1.0, "d10": 0.5}}
    assert run(Kind.SHOP, SHOP).groups == {}
    assert run(Kind.SHOP, {**SHOP, "groups": []}).reason == "bad_type:groups"
    bad: dict[str, Any]
    for bad in ({"g": {}}, {"g": {"a": -1}}, {"g": {"a": "1"}}, {"g": {"a": 0}}, {"": {"a": 1}}):
        assert run(Kind.SHOP, {**SHOP, "groups": bad}).reason == "bad_value:groups", bad


def test_shop_weights_too_large_to_sum_are_rejected() -> None:
    # 1e308 passed as "finite": two of them summed to inf, and the SRM shares were nan.
    for bad in ({"a": 1e308, "b": 1e308}, {"a": 1, "b": 1e9 + 1}, {"a": 1, "b": 1e400}):
        assert run(Kind.SHOP, {**SHOP, "groups": {"g": bad}}).reason == "bad_value:groups", bad
    ok = run(Kind.SHOP, {**SHOP, "groups": {"g": {"a": 1e9, "b": 1e-9}}})
    assert isinstance(ok, ShopSettings) and ok.groups == {"g": {"a": 1e9, "b": 1e-9}}
