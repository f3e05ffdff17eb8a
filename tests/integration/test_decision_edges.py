"""The decisions API on counters no arm of a real experiment should hold, yet Redis can: more
conversions than views, rates a hair apart, conversions without views. The API runs in-process
on a real redis-server whose counters the test writes itself (the key layout of
stream/state/keys.py), so each edge is exact."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest
import redis.asyncio as aredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from stream.dates.clock import FixedClock
from stream.devtools.embedded import EmbeddedRedis
from stream.http.api.routes import install_api
from stream.settings import Settings
from stream.state import keys
from stream.telemetry import Telemetry
from tests.support.redis_reset import clean_redis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    # aiohttp 3.13 warns about the handlers' str request keys (a worker subprocess only logs it)
    pytest.mark.filterwarnings("ignore:It is recommended to use web.RequestKey"),
]

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = date(2026, 12, 7)
JS_MAX = 2**53 - 1
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(redis_server: EmbeddedRedis) -> AsyncIterator[tuple[Client, aredis.Redis]]:
    url = clean_redis(redis_server)
    r = aredis.Redis.from_url(url)
    app = web.Application()
    install_api(
        app,
        redis=r,
        settings=Settings(auth_enabled=False),
        telemetry=Telemetry(),
        clock=FixedClock(NOW),
        tokens=None,
    )
    c: Client = TestClient(TestServer(app))
    await c.start_server()
    try:
        yield c, r
    finally:
        await c.close()
        await r.aclose()


async def put(
    r: aredis.Redis, shop: str, group: str, arms: Mapping[str, Mapping[str, int]]
) -> None:
    """Counters of one group on DAY: {variation: {metric code: value}}; the period's codes (v,
    u) in the day keys, the experiment's (s, k: exposed, converted) in its exposures hash."""
    d = DAY.isoformat()
    for variation, counts in arms.items():
        for metric, value in counts.items():
            if metric in (keys.EXPOSED, keys.CONVERTED):
                await r.hincrby(
                    keys.exposures(shop, d, group), keys.field(metric, variation), value
                )
                await r.hset(keys.experiment_starts(shop), group, d)
                continue
            await r.hincrby(keys.variations(shop, d, group), keys.field(metric, variation), value)
            await r.hincrby(keys.groups(shop, d), keys.field(metric, group), value)
            await r.hincrby(keys.day(shop, d), metric, value)


async def get(c: Client, path: str, **params: str) -> tuple[int, str]:
    resp = await c.get(path, params={"period": "today", **params})
    return resp.status, await resp.text()


def numbers(doc: Any) -> list[float]:
    if isinstance(doc, bool) or doc is None or isinstance(doc, str):
        return []
    if isinstance(doc, int | float):
        return [doc]
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in numbers(v)]
    return [x for v in doc for x in numbers(v)]


async def test_more_conversions_than_views_answers_200_with_null_intervals(
    client: tuple[Client, aredis.Redis],
) -> None:
    # Upgrades counted today whose views were yesterday: x > n made p(1-p) negative and
    # math.sqrt raised, a 500 for the JSON and the CSV alike.
    c, r = client
    await put(
        r, "s1", "g", {"control": {"v": 100, "u": 10, "s": 90, "k": 10}, "b": {"v": 3, "u": 7}}
    )
    status, body = await get(c, "/v1/shops/s1/groups/g")
    assert status == 200, body
    doc = json.loads(body)
    b = next(v for v in doc["variations"] if v["variation_id"] == "b")
    assert b["metrics"]["offer_conversion_rate"] > 1  # the period's figures, as counted
    assert b["stats"]["conversion_rate_ci95"] is None  # no exposed subscriber of b
    assert b["stats"]["diff_ci95"] is None and b["stats"]["p_value"] is None
    assert b["stats"]["significant"] is False
    status, body = await get(c, "/v1/shops/s1/groups/g", format="csv")
    assert status == 200, body
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {row["variation_id"] for row in rows} == {"control", "b"}
    status, body = await get(c, "/v1/shops/s1/groups", format="csv")
    assert status == 200, body


async def test_every_number_fits_a_javascript_number(
    client: tuple[Client, aredis.Redis],
) -> None:
    # control 10 % of 1e9 views, b 1e8 of 1e9 + 1: 1.41e20 more views "needed", past what
    # orjson writes (2^64) and what a JavaScript number holds exactly (2^53 - 1).
    c, r = client
    big = 1_000_000_000
    await put(
        r,
        "s2",
        "g",
        {
            "control": {"v": big, "u": big // 10, "s": big, "k": big // 10},
            "b": {"v": big + 1, "u": big // 10, "s": big + 1, "k": big // 10},
        },
    )
    status, body = await get(c, "/v1/shops/s2/groups/g")
    assert status == 200, body
    doc = json.loads(body)
    assert all(abs(x) <= JS_MAX for x in numbers(doc)), doc
    assert doc["experiment"]["exposed_subscribers"] == 2 * big + 1
    assert doc["verdict"]["subscribers_needed"] is not None


async def test_conversions_without_views_raise_no_sample_ratio_alarm(
    client: tuple[Client, aredis.Redis],
) -> None:
    # A paused variation with a late conversion: it counted as an SRM category with 0 views
    # against an expected third of them, p ~ 0, "mismatch".
    c, r = client
    await put(
        r,
        "s3",
        "g",
        {
            "control": {"v": 5000, "u": 50, "s": 5000, "k": 50},
            "b": {"v": 5010, "u": 52, "s": 5010, "k": 52},
            "paused": {"u": 1},
        },
    )
    status, body = await get(c, "/v1/shops/s3/groups/g")
    assert status == 200, body
    srm = json.loads(body)["srm"]
    assert srm["mismatch"] is False and srm["p_value"] > 0.5, srm
