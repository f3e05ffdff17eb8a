"""A request's batch, from body bytes to records ready for Kafka, or the reason why not.

Pure (no I/O, the time is given): parse the body, then for each event check the kind against
the key, apply the clock rule, add ``received_at`` and run the worker's own decoder on exactly
the bytes that will be produced. Contract: docs/contract.md, section 6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any

import orjson

from schemas.decode import FUTURE_TOLERANCE, decode
from schemas.models import Kind, Rejected
from schemas.timestamps import utc_text
from stream.collector.errors import CollectError
from stream.collector.write_keys import WriteKey
from stream.settings import Topics

MAX_BODY_BYTES = 64 * 1024
MAX_EVENTS = 100

# The collector's kind -> the decoder's kind (whose topic is Topics.of(kind)).
KINDS: dict[str, Kind] = {
    "banner_view": Kind.VIEW,
    "banner_click": Kind.CLICK,
    "upgrade": Kind.UPGRADE,
    "downgrade": Kind.DOWNGRADE,
    "shop": Kind.SHOP,
    "subscriber_count": Kind.SUBSCRIBERS,
}
_TIMED = frozenset({"banner_view", "banner_click", "upgrade", "downgrade"})
_SCHEMA_FILES = {
    "banner_view": "banner-view",
    "banner_click": "banner-click",
    "upgrade": "upgrade",
    "downgrade": "downgrade",
    "shop": "shop",
    "subscriber_count": "subscriber-count",
}


def _fields(kind: str) -> frozenset[str]:
    schema = files("schemas").joinpath(f"json/{_SCHEMA_FILES[kind]}.schema.json").read_bytes()
    return frozenset(orjson.loads(schema)["properties"]) | {"kind"}


# The fields an event of each kind may carry: its JSON Schema's (schemas/json/), plus "kind".
# Any other is refused as unknown_field:<name>, so a misspelt or made-up field (the snippet once
# sent a "banner_id" no schema knows, and the workers dropped it without a word) is told to the
# sender instead of vanishing.
FIELDS: dict[str, frozenset[str]] = {kind: _fields(kind) for kind in KINDS}
_BODY_FIELDS = frozenset({"events", "sent_at", "consent"})


@dataclass(frozen=True, slots=True)
class Record:
    index: int
    kind: str
    topic: str
    shop_id: str
    event_id: str | None  # None for shop settings and subscriber counts (no dedupe)
    value: bytes


@dataclass(slots=True)
class Prepared:
    records: list[Record] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # index, kind, reason


@dataclass(frozen=True, slots=True)
class Body:
    events: list[Any]
    sent_at: datetime | None
    consent: bool  # the visitor consented ("consent": true): a consent-required key needs it


def parse_body(body: bytes) -> Body:
    """``{"events": [...], "sent_at"?, "consent"?}``; raises :class:`CollectError`."""
    if len(body) > MAX_BODY_BYTES:
        raise CollectError(413, "too_large", f"the body is limited to {MAX_BODY_BYTES} bytes")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CollectError(400, "invalid_body", "the body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise CollectError(400, "invalid_body", 'expected {"events": [...]}')
    events: list[Any] = doc["events"]
    if not events:
        raise CollectError(400, "invalid_body", "no events")
    if len(events) > MAX_EVENTS:
        raise CollectError(413, "too_many_events", f"at most {MAX_EVENTS} events per request")
    unknown = sorted(set(doc) - _BODY_FIELDS)
    if unknown:
        raise CollectError(400, "invalid_body", f"unknown field {unknown[0]!r} in the body")
    consent = doc.get("consent", False)
    if type(consent) is not bool:
        raise CollectError(400, "invalid_body", "consent is true or false")
    return Body(events, _sent_at(doc.get("sent_at")), consent)


def _sent_at(value: object) -> datetime | None:
    if value is None:
        return None
    parsed = _instant(value)
    if parsed is None:
        raise CollectError(400, "invalid_body", "sent_at must be an RFC 3339 time with an offset")
    return parsed


def _instant(value: object) -> datetime | None:
    if type(value) is not str or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def prepare(
    events: list[Any],
    key: WriteKey,
    topics: Topics,
    received_at: datetime,
    sent_at: datetime | None,
    retention_days: int,
) -> Prepared:
    out = Prepared()
    skew = received_at - sent_at if sent_at is not None else timedelta(0)
    stamp = utc_text(received_at)
    for index, doc in enumerate(events):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        reason = _kind_problem(doc, kind, key)
        if reason is not None:
            out.rejected.append(
                (index, kind if isinstance(kind, str) and kind in KINDS else "unknown", reason)
            )
            continue
        assert isinstance(doc, dict) and isinstance(kind, str)
        body = {k: v for k, v in doc.items() if k != "kind"}
        body.setdefault("shop_id", key.shop_id)
        if kind in _TIMED and not _apply_clock_rule(body, received_at, skew):
            out.rejected.append((index, kind, "bad_value:occurred_at"))
            continue
        body["received_at"] = stamp
        value = orjson.dumps(body)
        decoder_kind = KINDS[kind]
        event = decode(decoder_kind, key.shop_id.encode(), value, received_at, retention_days)
        if isinstance(event, Rejected):
            out.rejected.append((index, kind, event.reason))
            continue
        event_id = getattr(event, "event_id", None)
        topic = topics.of(decoder_kind)
        out.records.append(Record(index, kind, topic, key.shop_id, event_id, value))
    return out


def _kind_problem(doc: object, kind: object, key: WriteKey) -> str | None:
    if not isinstance(doc, dict):
        return "bad_type:event"
    if kind is None:
        return "missing_field:kind"
    if type(kind) is not str or kind not in KINDS:
        return "bad_value:kind"
    if kind not in key.kinds:
        return "kind_not_allowed"
    shop = doc.get("shop_id")
    if isinstance(shop, str) and shop != key.shop_id:
        return "wrong_shop"  # this event only: the rest of the batch goes on
    unknown = sorted(set(doc) - FIELDS[kind])
    if unknown:
        return f"unknown_field:{unknown[0]}"
    return None


def _apply_clock_rule(body: dict[str, Any], received_at: datetime, skew: timedelta) -> bool:
    """The contract's rule for client clocks: a missing ``occurred_at`` is ``received_at``; with
    ``sent_at`` the client's clock offset (``received_at - sent_at``) is added to it; a time
    after ``received_at`` but within the decoder's 5 minutes is set to ``received_at``. What is
    left in the future beyond that is rejected by the decoder (``future_timestamp``). False when
    the offset takes the time out of the calendar (``sent_at`` 9999-12-31 with ``occurred_at``
    0001-01-02 raised OverflowError: a 500)."""
    raw = body.get("occurred_at")
    if raw is None:
        body["occurred_at"] = utc_text(received_at)
        return True
    occurred = original = _instant(raw)
    if original is None:
        return True  # the decoder names the problem
    try:
        occurred = original + skew
    except OverflowError:
        return False
    if received_at < occurred <= received_at + FUTURE_TOLERANCE:
        occurred = received_at
    if skew or occurred != original:
        body["occurred_at"] = utc_text(occurred)
    return True
