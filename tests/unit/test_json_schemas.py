"""The published JSON Schemas agree with the decoder on valid and structurally invalid samples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas.dead_letter import MAX_RECORD_BYTES, dead_letter_value
from schemas.decode import decode
from schemas.models import Kind, Rejected

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
FILES = {
    Kind.VIEW: "banner-view",
    Kind.CLICK: "banner-click",
    Kind.UPGRADE: "upgrade",
    Kind.DOWNGRADE: "downgrade",
    Kind.SHOP: "shop",
    Kind.SUBSCRIBERS: "subscriber-count",
}
PLAN = {"product_ids": ["p1"], "selling_plan_id": "basic", "mrr_minor": 1000}
VALID: dict[Kind, dict[str, Any]] = {
    Kind.VIEW: {
        "event_id": "e",
        "shop_id": "s1",
        "occurred_at": "2026-11-24T10:00:00Z",
        "group_id": "g",
        "variation_id": "a",
    },
    Kind.CLICK: {
        "event_id": "e",
        "shop_id": "s1",
        "occurred_at": "2026-11-24T10:00:00.5+01:00",
        "group_id": "g",
        "variation_id": "a",
        "subscriber_id": "x",
    },
    Kind.UPGRADE: {
        "event_id": "e",
        "shop_id": "s1",
        "occurred_at": "2026-11-24T10:00:00Z",
        "subscriber_id": "x",
        "order_id": "o",
        "from": PLAN,
        "to": PLAN,
        "revenue_minor": 5,
        "currency": "EUR",
    },
    Kind.DOWNGRADE: {
        "event_id": "e",
        "shop_id": "s1",
        "occurred_at": "2026-11-24T10:00:00Z",
        "subscriber_id": "x",
        "from": PLAN,
        "to": PLAN,
        "currency": "EUR",
        "group_id": "g",
        "variation_id": "b",
    },
    Kind.SHOP: {
        "shop_id": "s1",
        "timezone": "Europe/Berlin",
        "week_start": "sunday",
        "currency": "EUR",
    },
    Kind.SUBSCRIBERS: {"shop_id": "s1", "date": "2026-11-01", "active_subscribers": 10},
}


def schema(kind_file: str) -> Draft202012Validator:
    doc = json.loads(files("schemas").joinpath(f"json/{kind_file}.schema.json").read_text())
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc)


def mutations(kind: Kind) -> list[tuple[str, dict[str, Any]]]:
    base = VALID[kind]
    out = []
    for name in base:
        out.append((f"missing {name}", {k: v for k, v in base.items() if k != name}))
        wrong: Any = 12 if not isinstance(base[name], int) else "12"
        out.append((f"wrong type {name}", {**base, name: wrong}))
        if isinstance(base[name], str):
            out.append((f"too long {name}", {**base, name: "x" * 129}))
        if isinstance(base[name], int):
            out.append((f"negative {name}", {**base, name: -1}))
            out.append((f"above the maximum {name}", {**base, name: 10**12 + 1}))
    out.append(("bad shop id", {**base, "shop_id": "a b"}))
    if "currency" in base:
        out.append(("lower currency", {**base, "currency": "eur"}))
    if kind is Kind.SHOP:
        out.append(("groups not an object", {**base, "groups": []}))
        out.append(("negative weight", {**base, "groups": {"g": {"a": -1}}}))
        out.append(("weight of 1e308", {**base, "groups": {"g": {"a": 1e308}}}))
        out.append(("empty group", {**base, "groups": {"g": {}}}))
    if "from" in base:
        out.append(
            ("plan without mrr", {**base, "from": {"product_ids": [], "selling_plan_id": "p"}})
        )
    return out


@pytest.mark.parametrize("kind", list(FILES))
def test_valid_samples_accepted_by_both(kind: Kind) -> None:
    doc = VALID[kind]
    assert not list(schema(FILES[kind]).iter_errors(doc))
    assert not isinstance(decode(kind, b"s1", orjson.dumps(doc), NOW), Rejected)


@pytest.mark.parametrize("kind", list(FILES))
def test_structurally_invalid_samples_rejected_by_both(kind: Kind) -> None:
    validator = schema(FILES[kind])
    for label, doc in mutations(kind):
        if label in ("missing week_start", "missing revenue_minor") and kind in (
            Kind.SHOP,
            Kind.DOWNGRADE,
        ):
            continue  # optional with a default in both
        key = doc.get("shop_id") if isinstance(doc.get("shop_id"), str) else None
        decoded = decode(kind, key.encode() if key else None, orjson.dumps(doc), NOW)
        schema_ok = not list(validator.iter_errors(doc))
        assert isinstance(decoded, Rejected) and not schema_ok, (kind, label, decoded)


def test_dead_letter_record_matches_its_schema_and_is_bounded() -> None:
    validator = schema("dead-letter")
    worst = (
        b"{broken",
        b"\xff\xfe",
        None,
        b"",
        b"\x01" * 2_000_000,  # control characters: the most escaped JSON text
        ("\U0001f600" * 300_000).encode(),  # UTF-8, cut mid-character at 16 KiB
        bytes(range(256)) * 5000,
    )
    for raw in worst:
        doc = orjson.loads(
            dead_letter_value(
                topic="t",
                partition=1,
                offset=2,
                reason="invalid_json",
                detail="\x02" * 5000,
                raw=raw,
                now=NOW,
            )
        )
        assert not list(validator.iter_errors(doc)), doc
        assert len(orjson.dumps(doc)) <= MAX_RECORD_BYTES
        assert doc["truncated"] == (raw is not None and len(raw) > 16 * 1024)
