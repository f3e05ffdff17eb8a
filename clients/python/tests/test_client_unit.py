"""The client's batching and retry rules against a scripted collector (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from upsell_client import Collector, Plan, Refused, Unavailable

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Script:
    """Answers in order; records every request body."""

    def __init__(self, *answers: tuple[int, dict[str, str], dict[str, Any]] | OSError) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def __call__(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, dict[str, str], bytes]:
        assert url == "https://c.example/v1/collect"
        self.bodies.append(json.loads(body))
        self.headers.append(headers)
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        status, headers_out, doc = answer
        return status, headers_out, json.dumps(doc).encode()


def ok(n: int) -> tuple[int, dict[str, str], dict[str, Any]]:
    return 202, {}, {"accepted": n, "duplicates": 0, "rejected": []}


def client(send: Script, sleeps: list[float], jitter: float = 0.5, **kw: Any) -> Collector:
    return Collector(
        "https://c.example/",
        key="usk_x",
        shop="s1",
        send=send,
        sleep=sleeps.append,
        now=lambda: NOW,
        jitter=lambda: jitter,
        **kw,
    )


def upgrade(c: Collector, n: int = 1) -> str:
    return c.upgrade(
        subscriber=f"sub-{n}",
        order=f"o-{n}",
        revenue_minor=1200,
        currency="EUR",
        from_plan=Plan("monthly", 1500),
        to_plan=Plan("annual", 1250),
    )


def test_events_carry_ids_and_sent_at_and_go_in_batches() -> None:
    send, sleeps = Script(ok(2), ok(1)), list[float]()
    c = client(send, sleeps, batch_size=2)
    ids = [upgrade(c, 1), upgrade(c, 2), upgrade(c, 3)]
    assert len(send.bodies) == 1  # the batch size was reached once
    assert c.flush() == []
    sent = [e for b in send.bodies for e in b["events"]]
    assert [e["event_id"] for e in sent] == ids and len(set(ids)) == 3
    assert all(b["sent_at"] == "2026-12-07T12:00:00.000Z" for b in send.bodies)
    assert sent[0]["kind"] == "upgrade" and sent[0]["from"]["product_ids"] == ["monthly"]
    assert send.headers[0]["Authorization"] == "Bearer usk_x"


def test_a_503_is_retried_after_retry_after_with_jitter_and_the_same_ids() -> None:
    send, sleeps = Script((503, {"Retry-After": "3"}, {}), OSError("reset"), ok(1)), list[float]()
    c = client(send, sleeps)
    upgrade(c)
    c.flush()
    assert sleeps == [3 * 1.125, 2 * 1.125]  # Retry-After, then 1, 2, 4 ... s; +25 % x 0.5
    assert len({b["events"][0]["event_id"] for b in send.bodies}) == 1


def test_jitter_stays_within_a_quarter() -> None:
    for j in (0.0, 0.999):
        send, sleeps = Script((429, {"retry-after": "10"}, {}), ok(1)), list[float]()
        c = client(send, sleeps, jitter=j)
        upgrade(c)
        c.flush()
        assert 10 <= sleeps[0] < 12.5


def test_gives_up_after_max_tries() -> None:
    send, sleeps = Script(*[(503, {}, {})] * 3), list[float]()
    c = client(send, sleeps, max_tries=3)
    upgrade(c)
    with pytest.raises(Unavailable, match="503"):
        c.flush()
    assert len(send.bodies) == 3 and len(sleeps) == 2


def test_a_refused_key_raises_without_retry() -> None:
    send, sleeps = (
        Script((401, {}, {"error": {"code": "unauthorized", "message": "no"}})),
        list[float](),
    )
    c = client(send, sleeps)
    upgrade(c)
    with pytest.raises(Refused) as info:
        c.flush()
    assert info.value.status == 401 and info.value.code == "unauthorized"
    assert sleeps == []


def test_rejected_events_come_back_with_their_reason() -> None:
    rejected = {"error": {"code": "all_rejected", "message": "x"}}
    rejected["rejected"] = [{"index": 0, "reason": "bad_value:currency"}]  # type: ignore[assignment]
    send, sleeps = Script((400, {}, rejected)), list[float]()
    c = client(send, sleeps)
    event_id = upgrade(c)
    [r] = c.flush()
    assert r.reason == "bad_value:currency" and r.event["event_id"] == event_id
