"""The query API end to end: events in through Kafka, numbers out of HTTP, from two workers.

Expected figures come from the reference aggregator (tests/support/expected_state.py); every body is
validated against the OpenAPI document the API serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess, http_get
from tests.support import openapi_check
from tests.support.dates import days
from tests.support.e2e import api_workers, produce
from tests.support.event_factory import (
    FIRST_DAY,
    SHOPS,
    SWITCH_DAY,
    mixed_events,
    settings_messages,
)
from tests.support.expected_state import ExpectedState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ONE_DAY = timedelta(days=1)
TODAY = datetime.now(UTC).date()


class Stack:
    def __init__(
        self, ws: list[WorkerProcess], expected: ExpectedState, admin: str, utc_only: str
    ) -> None:
        self.workers = ws
        self.expected = expected
        self.admin = admin
        self.utc_only = utc_only

    def get(
        self, path: str, token: str | None = None, worker: int = 0, **params: str
    ) -> tuple[int, Any]:
        return self.query(path, params, token, worker)

    def query(
        self, path: str, params: Mapping[str, str], token: str | None = None, worker: int = 0
    ) -> tuple[int, Any]:
        url = self.workers[worker].url + path + ("?" + urlencode(params) if params else "")
        status, body = http_get(url, token=token if token is not None else self.admin, timeout=10)
        return status, json.loads(body) if body else None

    def ok(self, template: str, path: str, **params: str) -> Any:
        status, body = self.query(path, params)
        assert status == 200, body
        openapi_check.validate(openapi_check.response_schema(template, 200), body)
        return body


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    ws, topics, (admin, utc_only) = api_workers(
        broker.bootstrap,
        redis_server.url,
        tmp_path_factory.mktemp("api"),
        "apie2e.",
        2,
        [["*"], ["shop-utc"]],
        UPSELL_CORS_ORIGINS="https://dash.example",
    )
    sent = mixed_events(30_000, seed=77)
    expected = ExpectedState(SHOPS).add_all(sent)
    try:
        asyncio.run(produce(broker.bootstrap, topics, settings_messages()))
        for w in ws:
            w.start()
        for w in ws:
            w.wait_ready()
        asyncio.run(produce(broker.bootstrap, topics, [(s.kind, s.key, s.value) for s in sent]))
        s = Stack(ws, expected, admin, utc_only)
        _wait_counted(s)
        yield s
    finally:
        for w in ws:
            w.stop()


def _wait_counted(s: Stack, timeout_s: float = 90) -> None:
    want = sum(
        _day_raw(s.expected, shop, d).get("v", 0)
        for shop in SHOPS
        for d in days(FIRST_DAY, _today(shop))
    )
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while datetime.now(UTC) < deadline:
        got = 0
        for shop in SHOPS:
            _status, body = s.query(
                f"/v1/shops/{shop}/overview",
                {"period": "custom", "from": FIRST_DAY.isoformat(), "to": _today(shop).isoformat()},
            )
            got += body["metrics"]["banner_views"] if body and "metrics" in body else 0
        if got == want:
            return
        asyncio.run(asyncio.sleep(0.5))
    raise AssertionError(f"views never reached {want}")


def _today(shop: str) -> date:
    return datetime.now(ZoneInfo(SHOPS[shop])).date()


def _day_raw(expected: ExpectedState, shop: str, d: date) -> dict[str, int]:
    return dict(expected.hashes.get(f"us:{{{shop}}}:day:{d.isoformat()}", {}))


def _sum(expected: ExpectedState, shop: str, days: list[date]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in days:
        for k, v in _day_raw(expected, shop, d).items():
            out[k] = out.get(k, 0) + v
    return out


def _check_totals(metrics: dict[str, Any], raw: dict[str, int]) -> None:
    assert metrics["banner_views"] == raw.get("v", 0)
    assert metrics["banner_clicks"] == raw.get("c", 0)
    assert metrics["conversions"] == raw.get("u", 0)
    assert metrics["downgrades"] == raw.get("d", 0)
    revenue = {k[2:]: v for k, v in raw.items() if k.startswith("r:") and v}
    assert {k: v for k, v in metrics["revenue_minor"].items() if v} == revenue
    exp = {k[2:]: v for k, v in raw.items() if k.startswith("e:")}
    con = {k[2:]: v for k, v in raw.items() if k.startswith("x:")}
    net = {c: exp.get(c, 0) - con.get(c, 0) for c in set(exp) | set(con)}
    assert {k: v for k, v in metrics["net_mrr_minor"].items() if v} == {
        k: v for k, v in net.items() if v
    }
    assert {k: v for k, v in metrics["net_arr_minor"].items() if v} == {
        k: 12 * v for k, v in net.items() if v
    }
    views, clicks = raw.get("v", 0), raw.get("c", 0)
    assert metrics["click_through_rate"] == (round(clicks / views, 6) if views else None)
    assert metrics["conversion_rate"] == (round(raw.get("u", 0) / clicks, 6) if clicks else None)


@pytest.mark.parametrize("shop", list(SHOPS))
def test_overview_totals_match_reference(stack: Stack, shop: str) -> None:
    today = _today(shop)
    body = stack.ok(
        "/v1/shops/{shop_id}/overview",
        f"/v1/shops/{shop}/overview",
        period="custom",
        **{"from": FIRST_DAY.isoformat(), "to": today.isoformat()},
    )
    _check_totals(body["metrics"], _sum(stack.expected, shop, days(FIRST_DAY, today)))
    assert body["period"]["timezone"] == SHOPS[shop]
    assert body["compare"] is None and body["last_event_at"] is not None


@pytest.mark.parametrize(
    ("shop", "day"),
    [
        ("shop-ny", SWITCH_DAY),  # 23 or 25 hours long
        ("shop-ny", SWITCH_DAY - ONE_DAY),
        ("shop-utc", SWITCH_DAY),
        ("shop-in", SWITCH_DAY + ONE_DAY),
    ],
    ids=["ny-switch-day", "ny-day-before", "utc-switch-day", "in-day-after"],
)
def test_single_days_around_the_dst_switch(stack: Stack, shop: str, day: date) -> None:
    body = stack.ok(
        "/v1/shops/{shop_id}/overview",
        f"/v1/shops/{shop}/overview",
        period="date",
        date=day.isoformat(),
        compare="previous_period",
    )
    _check_totals(body["metrics"], _sum(stack.expected, shop, [day]))
    prev = day - ONE_DAY
    assert body["compare"]["period"]["from"] == prev.isoformat()
    _check_totals(body["compare"]["metrics"], _sum(stack.expected, shop, [prev]))


def test_timeseries_every_day_present(stack: Stack) -> None:
    shop = "shop-ny"
    # from three days before the first event's day to three after the DST switch
    window = {
        "from": (FIRST_DAY - 3 * ONE_DAY).isoformat(),
        "to": (SWITCH_DAY + 3 * ONE_DAY).isoformat(),
    }
    body = stack.ok(
        "/v1/shops/{shop_id}/timeseries",
        f"/v1/shops/{shop}/timeseries",
        period="custom",
        interval="day",
        **window,
    )
    assert [p["start"] for p in body["points"]] == [
        d.isoformat() for d in days(FIRST_DAY - 3 * ONE_DAY, SWITCH_DAY + 3 * ONE_DAY)
    ]
    assert body["points"][0]["metrics"]["banner_views"] == 0  # before any event: still present
    for point in body["points"]:
        _check_totals(
            point["metrics"], _sum(stack.expected, shop, [date.fromisoformat(point["start"])])
        )
    weeks = stack.ok(
        "/v1/shops/{shop_id}/timeseries",
        f"/v1/shops/{shop}/timeseries",
        period="custom",
        interval="week",
        **window,
    )
    # monday weeks, clipped to the window: the switch is a Sunday (US rule), so the window is
    # Tuesday to Sunday, then Monday to Wednesday
    assert SWITCH_DAY.weekday() == 6, SWITCH_DAY
    assert [(p["start"], p["end"]) for p in weeks["points"]] == [
        (window["from"], SWITCH_DAY.isoformat()),
        ((SWITCH_DAY + ONE_DAY).isoformat(), window["to"]),
    ]


def test_groups_and_one_group_match_reference(stack: Stack) -> None:
    shop = "shop-utc"
    today = _today(shop)
    params = {"period": "custom", "from": FIRST_DAY.isoformat(), "to": today.isoformat()}
    body = stack.ok("/v1/shops/{shop_id}/groups", f"/v1/shops/{shop}/groups", **params)
    want: dict[str, dict[str, int]] = {}
    for key, fields in stack.expected.hashes.items():
        if key.startswith(f"us:{{{shop}}}:grp:"):
            for f, v in fields.items():
                metric, group = f.split("\x1f", 1)
                want.setdefault(group, {})
                want[group][metric] = want[group].get(metric, 0) + v
    assert {g["group_id"] for g in body["groups"]} == set(want)
    for row in body["groups"]:
        _check_totals(row["metrics"], want[row["group_id"]])
    order = [(-g["metrics"]["conversions"], -g["metrics"]["banner_views"]) for g in body["groups"]]
    assert order == sorted(order)
    group = body["groups"][0]["group_id"]
    detail = stack.ok(
        "/v1/shops/{shop_id}/groups/{group_id}",
        f"/v1/shops/{shop}/groups/{quote(group, safe='')}",
        **params,
    )
    _check_totals(detail["metrics"], want[group])
    conversions = sum(v["metrics"]["conversions"] for v in detail["variations"])
    moved = sum(t["conversions"] for v in detail["variations"] for t in v["transitions"])
    assert conversions == moved == want[group].get("u", 0)


def test_conversions_ledger_pages_newest_first(stack: Stack) -> None:
    shop = "shop-in"
    today = _today(shop)
    params = {
        "period": "custom",
        "from": FIRST_DAY.isoformat(),
        "to": today.isoformat(),
        "limit": "37",
    }
    seen: list[str] = []
    times: list[str] = []
    cursor = None
    while True:
        extra: dict[str, str] = {"cursor": cursor} if cursor else {}
        page = stack.ok(
            "/v1/shops/{shop_id}/conversions", f"/v1/shops/{shop}/conversions", **params, **extra
        )
        seen += [i["event_id"] for i in page["items"]]
        times += [i["occurred_at"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == stack.expected.ledger_sizes()[f"us:{{{shop}}}:ledger"]
    assert times == sorted(times, reverse=True)


def test_two_workers_give_the_same_answers(stack: Stack) -> None:
    for path in (
        "/v1/shops/shop-ny/overview",
        "/v1/shops/shop-ny/groups",
        "/v1/shops/shop-ny/timeseries",
    ):
        a = stack.get(path, worker=0, period="this_month", compare="previous_year")
        b = stack.get(path, worker=1, period="this_month", compare="previous_year")
        assert a[0] == b[0] == 200
        a[1].pop("as_of", None)
        b[1].pop("as_of", None)
        assert a[1] == b[1]


def test_shops_listing_follows_the_token(stack: Stack) -> None:
    body = stack.ok("/v1/shops", "/v1/shops")
    assert [s["shop_id"] for s in body["shops"]] == sorted(SHOPS)
    assert body["next_cursor"] is None
    status, limited = stack.get("/v1/shops", token=stack.utc_only)
    assert status == 200 and [s["shop_id"] for s in limited["shops"]] == ["shop-utc"]


def test_shops_listing_is_paged(stack: Stack) -> None:
    listed: list[str] = []
    params = {"limit": "1"}
    for _ in range(len(SHOPS) + 1):
        body = stack.ok("/v1/shops", "/v1/shops", **params)
        assert len(body["shops"]) <= 1, body
        listed += [s["shop_id"] for s in body["shops"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert listed == sorted(SHOPS)
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": "²"}, {"cursor": "not-ours!"}):
        status, error = stack.query("/v1/shops", bad)
        assert status == 400 and error["error"]["param"] in bad, (bad, error)


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"period": "fortnight"}, "bad_period", "period"),
        ({"period": "date", "date": f"{TODAY.year}-02-30"}, "bad_date", "date"),
        ({"period": "date"}, "bad_date", "date"),
        (
            {"period": "custom", "from": TODAY.isoformat(), "to": (TODAY - ONE_DAY).isoformat()},
            "bad_range",
            "from",
        ),
        (  # longer than the 800 days of retention
            {
                "period": "custom",
                "from": (TODAY - 2000 * ONE_DAY).isoformat(),
                "to": TODAY.isoformat(),
            },
            "range_too_long",
            "to",
        ),
        ({"compare": "yesteryear"}, "bad_compare", "compare"),
        ({"compare": "custom", "compare_from": "x"}, "bad_date", "compare_from"),
    ],
)
def test_bad_parameters_are_400_with_a_code(
    stack: Stack, params: dict[str, str], code: str, param: str
) -> None:
    status, body = stack.query("/v1/shops/shop-utc/overview", params)
    assert status == 400
    openapi_check.validate("Error", body)
    assert body["error"]["code"] == code and body["error"]["param"] == param


def test_other_error_cases(stack: Stack) -> None:
    cases = [
        ("/v1/shops/shop-utc/timeseries", {"interval": "hour"}, None, 400, "bad_interval"),
        ("/v1/shops/shop-utc/conversions", {"limit": "0"}, None, 400, "bad_limit"),
        ("/v1/shops/shop-utc/conversions", {"limit": "501"}, None, 400, "bad_limit"),
        ("/v1/shops/shop-utc/conversions", {"cursor": "garbage!"}, None, 400, "bad_cursor"),
        ("/v1/shops/shop-utc/overview", {}, "", 401, "unauthorized"),
        ("/v1/shops/shop-utc/overview", {}, "not-a-token", 401, "unauthorized"),
        ("/v1/shops/shop-ny/overview", {}, stack.utc_only, 403, "forbidden"),
        ("/v1/nothing-here", {}, None, 404, "not_found"),
    ]
    for path, params, token, status, code in cases:
        got, body = stack.query(path, params, token=token)
        assert (got, body["error"]["code"]) == (status, code), (path, params, body)
        openapi_check.validate("Error", body)


def test_cors_for_configured_origin_only(stack: Stack) -> None:
    import urllib.request

    for origin, allowed in (("https://dash.example", True), ("https://evil.example", False)):
        req = urllib.request.Request(
            stack.workers[0].url + "/v1/shops",
            method="OPTIONS",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                header = resp.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as exc:
            header = exc.headers.get("Access-Control-Allow-Origin")
        assert (header == origin) is allowed


def test_openapi_served_and_valid(stack: Stack, tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    status, body = stack.get("/v1/openapi.json", token="")
    assert status == 200 and body["openapi"].startswith("3.1")
    for name, schema in body["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
