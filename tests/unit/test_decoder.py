"""The worker's Decoder answers exactly as the contract's validator, on the inputs nearest its
typed fast path: views and clicks whose fields are almost right."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decode import decode
from schemas.decoder import Decoder, TimeBounds
from schemas.models import BannerClick, BannerView, Kind

NOW = datetime.now(UTC).replace(microsecond=0)
BOUNDS = TimeBounds.at(NOW, 800)
SHARED = Decoder()

ids = st.one_of(
    st.text(min_size=0, max_size=130),
    st.sampled_from(["s1", "x" * 128, "x" * 129, "", "bad shop", "é" * 128, "😀" * 129]),
)
stamps = st.one_of(
    st.sampled_from(
        [
            (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (NOW - timedelta(hours=1)).strftime("%Y-%m-%dt%H:%M:%S.123456789z"),
            (NOW - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.1234567891Z"),
            (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.9999999+01:00"),
            (NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (NOW + timedelta(minutes=5, seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (NOW - timedelta(days=801)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "2026-02-30T10:00:00Z",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00:60Z",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
values = st.one_of(
    ids, st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": draw(ids),
        "shop_id": draw(st.sampled_from(["s1", "s2", "bad shop", "x" * 128, "x" * 129])),
        "occurred_at": draw(stamps),
        "group_id": draw(ids),
        "variation_id": draw(ids),
    }
    if draw(st.booleans()):
        doc["subscriber_id"] = draw(st.one_of(ids, st.none()))
    for name in draw(st.lists(st.sampled_from([*doc, "extra"]), max_size=2)):
        if draw(st.booleans()):
            doc.pop(name, None)
        else:
            doc[name] = draw(values)
    return doc


@settings(max_examples=600, deadline=None)
@given(
    doc=near_valid(),
    kind=st.sampled_from([Kind.VIEW, Kind.CLICK]),
    key=st.sampled_from([b"s1", None, b"s2", b"\xff"]),
    tail=st.sampled_from([b"", b',"x":1e999', b',"x":"\xff"', b',"x":NaN', b',"x":01', b"]"]),
)
def test_decoder_answers_as_the_validator(
    doc: dict[str, Any], kind: Kind, key: bytes, tail: bytes
) -> None:
    """``tail`` adds what only a byte-level parser sees: a number out of a double's range,
    invalid UTF-8, a non-JSON token, a leading zero, a stray bracket."""
    raw = json.dumps(doc, ensure_ascii=bool(len(doc) % 2)).encode()
    raw = raw[:-1] + tail + b"}" if doc else raw
    want = decode(kind, key, raw, NOW)
    assert SHARED.decode(kind, key, raw, BOUNDS) == want
    assert Decoder().decode(kind, key, raw, BOUNDS) == want


def test_a_valid_view_and_click_take_the_typed_path() -> None:
    """A well-formed view or click is built without the validator's dict pass (its counters
    would not see it): the result equals the validator's."""
    doc = {
        "event_id": "e1",
        "shop_id": "s1",
        "occurred_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "group_id": "g",
        "variation_id": "a",
        "subscriber_id": "sub",
    }
    raw = json.dumps(doc).encode()
    decoder = Decoder()
    view = decoder.decode(Kind.VIEW, b"s1", raw, BOUNDS)
    click = decoder.decode(Kind.CLICK, b"s1", raw, BOUNDS)
    assert isinstance(view, BannerView) and view == decode(Kind.VIEW, b"s1", raw, NOW)
    assert isinstance(click, BannerClick) and click == decode(Kind.CLICK, b"s1", raw, NOW)
    assert decoder._shops == {"s1": b"s1"}, "the shop id was learnt once, by the typed path"
