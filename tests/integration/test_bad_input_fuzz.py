"""Hostile input through Kafka at a running worker: hypothesis mutates valid events; every bad
one ends in the dead-letter topic with a reason, the worker never restarts, and the valid events
around them are all counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from schemas.decode import decode
from schemas.models import Kind, Rejected
from stream.dates.clock import system_clock
from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from stream.state import keys
from tests.support.dates import iso_instant, utc_day
from tests.support.e2e import eventually, produce, read_topic, worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NOW = datetime.now(UTC)
AN_HOUR_AGO = NOW - timedelta(hours=1)
PLAN = {"product_ids": ["p"], "selling_plan_id": "basic", "mrr_minor": 1000}
VALID = {
    "event_id": "x",
    "shop_id": "fz",
    "occurred_at": iso_instant(AN_HOUR_AGO),
    "subscriber_id": "s",
    "order_id": "o",
    "group_id": "g",
    "variation_id": "a",
    "from": PLAN,
    "to": {**PLAN, "selling_plan_id": "pro", "mrr_minor": 2000},
    "revenue_minor": 10,
    "currency": "USD",
}

weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=300),
    st.text(min_size=129, max_size=200),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers()),
    st.sampled_from(
        [
            iso_instant(NOW + timedelta(days=30)),  # future
            iso_instant(NOW - timedelta(days=3000)),  # past the 800 days of retention
            utc_day(NOW),  # a date without a time
            "not-a-date",
            "x" * 70_000,
        ]
    ),
)


@st.composite
def mutation(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    doc: dict[str, Any] = dict(VALID)
    how = draw(st.sampled_from(["field", "drop", "nest", "utf8", "nan", "key", "raw"]))
    name = draw(st.sampled_from(sorted(VALID)))
    if how == "field":
        doc[name] = draw(weird)
    elif how == "drop":
        doc.pop(name)
    elif how == "nest":
        depth = draw(st.integers(100, 3000))
        doc[name] = "@NEST@"
        text = json.dumps(doc).encode()
        return b"fz", text.replace(b'"@NEST@"', b"[" * depth + b"1" + b"]" * depth)
    elif how == "utf8":
        return b"fz", orjson.dumps(doc)[:-2] + b"\xff\xfe" + b'"}'
    elif how == "nan":
        return b"fz", orjson.dumps(doc).replace(b'"revenue_minor":10', b'"revenue_minor":NaN')
    elif how == "key":
        return draw(st.binary(min_size=1, max_size=8)), orjson.dumps(doc)
    else:
        return b"fz", draw(st.binary(max_size=200))
    return b"fz", json.dumps(doc).encode()


# One mutation per example: 600 examples are 600 draws. (Lists of 400 per example drew 160,000
# mutations in ~160 s, of which the test used the first 600: two distinct messages.)
@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(one=mutation())
def _collect(one: tuple[bytes | None, bytes]) -> None:
    _COLLECTED.append(one)


_COLLECTED: list[tuple[bytes | None, bytes]] = []


async def test_mutations_are_dead_lettered_and_valid_neighbours_counted(
    broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    _COLLECTED.clear()
    _collect()
    now = system_clock()
    bad = [
        (k, v) for k, v in _COLLECTED[:600] if isinstance(decode(Kind.UPGRADE, k, v, now), Rejected)
    ]
    assert len(bad) > 300
    items: list[tuple[str, bytes | None, bytes | None]] = []
    for i, (key, value) in enumerate(bad):
        items.append(("upgrade", b"fz", orjson.dumps({**VALID, "event_id": f"ok-{i}"})))
        items.append(("upgrade", key, value))
    (w,) = workers(worker_env(broker.bootstrap, redis_url, created_topics, "batch"), tmp_path, 1)
    redis = Redis.from_url(redis_url)
    try:
        w.start().wait_ready()
        await produce(broker.bootstrap, created_topics, items)
        counted = await eventually(
            lambda: redis.hget(keys.day("fz", utc_day(AN_HOUR_AGO)), "u"),
            lambda v: v == str(len(bad)).encode(),
            90,
        )
        assert counted == str(len(bad)).encode(), f"{counted!r} of {len(bad)} valid upgrades"

        letters = await eventually(
            lambda: read_topic(broker.bootstrap, created_topics.dead_letters),
            lambda rs: len(rs) >= len(bad),
            60,
        )
        assert len(letters) == len(bad), f"{len(letters)} of {len(bad)} dead letters"
        reasons = {dict(r.headers)["reason"].decode() for r in letters}
        assert all(
            r.split(":")[0]
            in {
                "invalid_json",
                "bad_type",
                "missing_field",
                "bad_value",
                "future_timestamp",
                "too_old",
                "key_mismatch",
                "too_large",
            }
            for r in reasons
        ), reasons
        assert w.alive() and w.starts == 1
        assert "Traceback" not in (tmp_path / "w1.log").read_text()
    finally:
        await redis.aclose()
        w.stop()
