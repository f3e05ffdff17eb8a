"""Pure parts of the collector: the clock rule, kinds per key, body limits, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.timestamps import utc_text as iso
from stream.collector.errors import CollectError
from stream.collector.limits import RateLimiter, retry_after
from stream.collector.request_body import parse_body, prepare
from stream.collector.write_keys import KeyKind, WriteKey, normalise_origins
from stream.settings import Topics

NOW = datetime.now(UTC).replace(microsecond=0)
PUBLIC = WriteKey("k1", "s1", KeyKind.PUBLIC, frozenset({"https://s1.example"}))
SECRET = WriteKey("k2", "s1", KeyKind.SECRET, frozenset())


def view(**fields: Any) -> dict[str, Any]:
    return {"kind": "banner_view", "event_id": "e1", "group_id": "g", "variation_id": "v", **fields}


def produced(event: dict[str, Any], sent_at: datetime | None = None) -> dict[str, Any]:
    out = prepare([event], SECRET, Topics(), NOW, sent_at, retention_days=800)
    assert not out.rejected, out.rejected
    doc: dict[str, Any] = orjson.loads(out.records[0].value)
    return doc


def test_missing_time_and_shop_come_from_the_request() -> None:
    doc = produced(view())
    assert doc["occurred_at"] == doc["received_at"] == iso(NOW)
    assert doc["shop_id"] == "s1" and "kind" not in doc


def test_sent_at_corrects_a_skewed_client_clock() -> None:
    client_off = timedelta(hours=-3)  # the client's clock is 3 h behind
    occurred = NOW + client_off - timedelta(seconds=10)
    doc = produced(view(occurred_at=iso(occurred)), sent_at=NOW + client_off)
    assert doc["occurred_at"] == iso(NOW - timedelta(seconds=10))


def test_slightly_future_times_are_set_to_received_at() -> None:
    doc = produced(view(occurred_at=iso(NOW + timedelta(minutes=2))))
    assert doc["occurred_at"] == iso(NOW)


def test_far_future_without_sent_at_is_rejected() -> None:
    event = view(occurred_at=iso(NOW + timedelta(hours=2)))
    out = prepare([event], SECRET, Topics(), NOW, None, retention_days=800)
    assert out.rejected == [(0, "banner_view", "future_timestamp")]


def test_public_keys_send_views_and_clicks_only() -> None:
    events = [{"kind": k} for k in ("upgrade", "downgrade", "shop", "subscriber_count")]
    out = prepare(events, PUBLIC, Topics(), NOW, None, retention_days=800)
    assert [r[2] for r in out.rejected] == ["kind_not_allowed"] * 4
    assert PUBLIC.allows_origin("https://s1.example")
    assert not PUBLIC.allows_origin("https://s1.example.evil")
    assert not PUBLIC.allows_origin(None)


def test_a_field_outside_the_kinds_schema_is_rejected_by_name() -> None:
    """The snippet once sent ``banner_id``, which no schema knows: the workers ignored it
    silently. Every field of each kind's JSON Schema still passes."""
    out = prepare([view(banner_id="annual-20")], PUBLIC, Topics(), NOW, None, retention_days=800)
    assert out.rejected == [(0, "banner_view", "unknown_field:banner_id")]
    assert produced(view(subscriber_id="s", occurred_at=iso(NOW), shop_id="s1"))
    body = parse_body(b'{"events": [{}], "consent": true}')
    assert body.consent is True and parse_body(b'{"events": [{}]}').consent is False
    for bad in (b'{"events": [{}], "banner": 1}', b'{"events": [{}], "consent": "yes"}'):
        with pytest.raises(CollectError) as exc:
            parse_body(bad)
        assert exc.value.status == 400, bad


def test_body_limits() -> None:
    with pytest.raises(CollectError) as too_many:
        parse_body(orjson.dumps({"events": [{}] * 101}))
    assert too_many.value.status == 413
    for bad in (b"nope", b"[]", b'{"events": []}', b'{"events": [{}], "sent_at": "yesterday"}'):
        with pytest.raises(CollectError) as exc:
            parse_body(bad)
        assert exc.value.status == 400, bad


def test_origins_are_scheme_and_host() -> None:
    assert normalise_origins(["https://a.example/"]) == {"https://a.example"}
    with pytest.raises(ValueError):
        normalise_origins(["a.example"])


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(rate_per_s=10, burst=100, max_entries=10, monotonic=clock)
    assert limiter.take("a", 100) == 0.0
    wait = limiter.take("a", 20)
    assert wait == pytest.approx(2.0) and retry_after(wait) == "2"
    clock.t += 2.0
    assert limiter.take("a", 20) == 0.0


def test_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=5, max_entries=100, monotonic=FakeMonotonic())
    for i in range(10_000):
        limiter.take(f"10.0.{i // 256}.{i % 256}", 1)
    assert len(limiter) == 100


LIMITS = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+23:59",
    "0001-01-02T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T00:00:00Z",
]


@pytest.mark.parametrize("sent_at", [None, *LIMITS])
@pytest.mark.parametrize("occurred_at", LIMITS)
def test_times_at_the_ends_of_the_calendar_are_rejected_not_raised(
    sent_at: str | None, occurred_at: str
) -> None:
    """sent_at 9999-12-31 with occurred_at 0001-01-02 raised OverflowError when the clock
    offset was applied: a 500 for a public key. Each such event is rejected on its own."""
    body: dict[str, Any] = {"events": [view(occurred_at=occurred_at), view()]}
    if sent_at is not None:
        body["sent_at"] = sent_at
    parsed = parse_body(orjson.dumps(body))
    out = prepare(parsed.events, PUBLIC, Topics(), NOW, parsed.sent_at, retention_days=800)
    assert 1 in [r.index for r in out.records]  # no occurred_at: received_at, always valid
    assert sorted([r.index for r in out.records] + [r[0] for r in out.rejected]) == [0, 1]


def test_an_event_of_another_shop_is_rejected_alone() -> None:
    out = prepare(
        [view(), view(shop_id="s2"), view(shop_id="s1")], SECRET, Topics(), NOW, None, 800
    )
    assert [r.index for r in out.records] == [0, 2]
    assert out.rejected == [(1, "banner_view", "wrong_shop")]


def test_a_kind_that_is_not_text_is_rejected_not_raised() -> None:
    """Schemathesis sent ``"kind": {}``: looking an unhashable kind up raised (a 500)."""
    out = prepare([{"kind": {}}, {"kind": []}], SECRET, Topics(), NOW, None, 800)
    assert out.rejected == [(0, "unknown", "bad_value:kind"), (1, "unknown", "bad_value:kind")]
