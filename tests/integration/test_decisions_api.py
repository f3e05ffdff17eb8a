"""Decisions over HTTP: group stats, SRM and control, CSV exports and the live stream, from
events produced through Kafka to a real worker (auth on)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess, http_get
from stream.stats.arms import Arm, Revenue
from stream.stats.verdict import decide
from tests.support import openapi_check
from tests.support.e2e import api_workers, produce
from tests.support.experiment_events import arms, shop_message, upgrade, view, views_of
from tests.support.metrics import scrape, total

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SHOP, TZ = "akl", "Pacific/Auckland"
BANNER = {"control": (2000, 40), "discount-10": (2000, 90), "free-month": (2000, 44)}
SPLIT = {"a": (900, 10), "b": (600, 8)}  # equal split intended: trips the SRM check
WEIGHTED = {"a": (900, 10), "b": (600, 8)}  # intended 3:2 in the shop's settings
# (subscribers, converted) per variation; each subscriber sees its banner 1 to 3 times. Also 25
# views without a subscriber_id in "banner", and one subscriber of "split" who saw both.
ANONYMOUS = 25


class Api:
    def __init__(self, worker: WorkerProcess, admin: str, other: str, now: datetime) -> None:
        self.worker, self.admin, self.other, self.now = worker, admin, other, now
        today = now.astimezone(ZoneInfo(TZ)).date()
        self.period = {
            "period": "custom",
            "from": (today - timedelta(days=1)).isoformat(),
            "to": today.isoformat(),
        }

    def raw(self, path: str, token: str | None = None, **params: str) -> tuple[int, bytes]:
        url = f"{self.worker.url}{path}?{urlencode({**self.period, **params})}"
        return http_get(url, token=self.admin if token is None else token, timeout=10)

    def json(self, path: str, template: str | None = None, **params: str) -> Any:
        status, body = self.raw(path, **params)
        assert status == 200, body
        doc = json.loads(body)
        if template:
            openapi_check.validate(openapi_check.response_schema(template, 200), doc)
        return doc


@pytest.fixture(scope="module")
def api(
    broker: EmbeddedBroker, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    ws, topics, (admin, other) = api_workers(
        broker.bootstrap,
        redis_server.url,
        tmp_path_factory.mktemp("decide"),
        "decide.",
        2,
        [[SHOP], ["elsewhere"]],
        UPSELL_LIVE_MAX_STREAMS="2",
        UPSELL_LIVE_HEARTBEAT_S="0.5",
        UPSELL_API_MAX_HEAVY_QUERIES="1",
    )
    w = ws[0]
    now = datetime.now(UTC)
    settings = shop_message(SHOP, TZ, "NZD", {"weighted": {"a": 3, "b": 2}})
    earlier = now - timedelta(minutes=11)
    messages = [
        *arms(SHOP, "banner", BANNER, now),
        *arms(SHOP, "split", SPLIT, now),
        *arms(SHOP, "weighted", WEIGHTED, now),
        *[view(SHOP, f"anon-{i}", earlier, "banner", "control") for i in range(ANONYMOUS)],
        view(SHOP, "cross-1", now - timedelta(minutes=1), "split", "b", "split-a-s0"),
    ]
    try:
        asyncio.run(produce(broker.bootstrap, topics, [settings]))
        for each in ws:
            each.start()
        for each in ws:
            each.wait_ready()
        asyncio.run(produce(broker.bootstrap, topics, messages))
        a = Api(w, admin, other, now)
        a.workers = ws  # type: ignore[attr-defined]
        want = sum(map(views_of, (BANNER, SPLIT, WEIGHTED))) + ANONYMOUS + 1
        for _ in range(120):
            if a.json(f"/v1/shops/{SHOP}/overview")["metrics"]["banner_views"] == want:
                break
            asyncio.run(asyncio.sleep(0.5))
        got = a.json(f"/v1/shops/{SHOP}/overview")["metrics"]["banner_views"]
        assert got == want, f"counted {got} of {want} views"
        a.topics = topics  # type: ignore[attr-defined]
        a.bootstrap = broker.bootstrap  # type: ignore[attr-defined]
        yield a
    finally:
        for each in ws:
            each.stop()


def _expected(counts: dict[str, tuple[int, int]], control: str, days: int) -> dict[str, Any]:
    stats, _verdict = decide(
        [
            Arm(v, n, x, revenue={"NZD": Revenue(1200.0 * x, 1200.0**2 * x)})
            for v, (n, x) in sorted(counts.items())
        ],
        control,
        mde=0.1,
        days_running=days,
    )
    return {s.variation_id: s for s in stats}


def test_group_stats_on_exposed_subscribers_against_the_stats_package(api: Api) -> None:
    doc = api.json(f"/v1/shops/{SHOP}/groups/banner", "/v1/shops/{shop_id}/groups/{group_id}")
    assert doc["control_variation_id"] == "control"
    run = doc["experiment"]
    assert run["started_by"] == "first_exposure" and run["days_running"] in (1, 2)
    assert run["exposed_subscribers"] == sum(n for n, _ in BANNER.values())
    assert run["views_without_subscriber"] == ANONYMOUS
    want = _expected(BANNER, "control", run["days_running"])
    for v in doc["variations"]:
        s, w = v["stats"], want[v["variation_id"]]
        n, x = BANNER[v["variation_id"]]
        assert s["exposed_subscribers"] == n and s["converted_subscribers"] == x
        assert s["significant"] == w.significant, v["variation_id"]
        assert s["revenue_per_subscriber"]["NZD"]["mean"] == pytest.approx(1200 * x / n)
        if w.comparison is None:
            assert s["lift"] is None and s["p_value"] is None
            continue
        conv = w.comparison.conversion
        assert conv is not None and conv.p_value is not None
        assert s["lift"] == pytest.approx(w.lift, rel=1e-5)
        assert s["p_value"] == pytest.approx(conv.p_value, rel=1e-5, abs=1e-300)
        assert s["p_value_adjusted"] == pytest.approx(w.p_value_adjusted, rel=1e-5, abs=1e-300)
        assert s["diff_ci95"] == pytest.approx(list(conv.ci95 or ()), rel=1e-5)
        assert s["enough_data"] is True
        money = w.comparison.revenue["NZD"]
        assert s["revenue_per_subscriber"]["NZD"]["diff_ci95"] == pytest.approx(
            list(money.ci95 or ()), rel=1e-5
        )
    assert doc["verdict"]["winner"] == "discount-10"
    assert doc["verdict"]["lift"] == pytest.approx(90 / 40 - 1, rel=1e-5)
    assert doc["srm"] == {
        "p_value": pytest.approx(1.0),
        "mismatch": False,
        "expected_split": "equal",
    }


def test_a_subscriber_who_saw_two_variations_counts_for_the_first(api: Api) -> None:
    doc = api.json(f"/v1/shops/{SHOP}/groups/split")
    by_id = {v["variation_id"]: v["stats"] for v in doc["variations"]}
    assert by_id["a"]["exposed_subscribers"] == 900 and by_id["b"]["exposed_subscribers"] == 600
    assert by_id["a"]["crossed_subscribers"] == 1 and doc["experiment"]["crossed_subscribers"] == 1


def test_control_parameter_overrides_the_default(api: Api) -> None:
    doc = api.json(f"/v1/shops/{SHOP}/groups/banner", control="free-month")
    assert doc["control_variation_id"] == "free-month"
    by_id = {v["variation_id"]: v["stats"] for v in doc["variations"]}
    assert by_id["free-month"]["lift"] is None
    assert by_id["control"]["lift"] == pytest.approx(40 / 44 - 1, rel=1e-5)
    fallback = api.json(f"/v1/shops/{SHOP}/groups/banner", control="nope")
    assert fallback["control_variation_id"] == "control"
    status, _ = api.raw(f"/v1/shops/{SHOP}/groups/banner", control="x" * 129)
    assert status == 400
    split = api.json(f"/v1/shops/{SHOP}/groups/split")
    assert split["control_variation_id"] == "a"  # no "control": the first id


def test_srm_against_equal_split_and_against_the_shops_weights(api: Api) -> None:
    split = api.json(f"/v1/shops/{SHOP}/groups/split")["srm"]
    # exposed subscribers: chi-square of 900/600 against 750/750: 2 * 150^2 / 750 = 60 on 1 df
    assert split["mismatch"] is True and split["p_value"] < 1e-6
    weighted = api.json(f"/v1/shops/{SHOP}/groups/weighted")["srm"]
    assert weighted == {
        "p_value": pytest.approx(1.0),
        "mismatch": False,
        "expected_split": "settings",
    }


def _csv(api: Api, path: str, **params: str) -> list[dict[str, str]]:
    status, body = api.raw(path, format="csv", **params)
    assert status == 200, body
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_csv_exports(api: Api) -> None:
    overview = _csv(api, f"/v1/shops/{SHOP}/overview")
    assert len(overview) == 1 and overview[0]["currency"] == "NZD"
    conversions = sum(x for arm in (BANNER, SPLIT, WEIGHTED) for _, x in arm.values())
    assert overview[0]["revenue"] == f"{12 * conversions}.00"  # 1200 minor = 12.00 NZD each
    series = _csv(api, f"/v1/shops/{SHOP}/timeseries")
    assert sum(int(r["banner_views"]) for r in series) == int(overview[0]["banner_views"])
    groups = _csv(api, f"/v1/shops/{SHOP}/groups")
    d10 = next(
        r for r in groups if r["group_id"] == "banner" and r["variation_id"] == "discount-10"
    )
    assert d10["significant"] == "True" and d10["is_control"] == "False"
    assert d10["revenue"] == "1080.00" and d10["revenue_per_subscriber"] == "0.540000"
    assert d10["exposed_subscribers"] == "2000" and d10["converted_subscribers"] == "90"
    assert {r["srm_mismatch"] for r in groups if r["group_id"] == "split"} == {"True"}
    ledger = _csv(api, f"/v1/shops/{SHOP}/conversions")
    assert len(ledger) == conversions  # the whole period, not one page
    assert len({r["event_id"] for r in ledger}) == conversions
    first = ledger[0]
    local = datetime.fromisoformat(first["local_time"])
    assert (
        local.utcoffset()
        == datetime.fromisoformat(first["occurred_at_utc"]).astimezone(ZoneInfo(TZ)).utcoffset()
    )
    assert first["from_selling_plan"] == "monthly" and first["to_selling_plan"] == "annual"
    # Accept header instead of the parameter; format=json wins over it
    url = f"{api.worker.url}/v1/shops/{SHOP}/overview?{urlencode(api.period)}"
    import urllib.request

    req = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {api.admin}", "Accept": "text/csv"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in resp.headers["Content-Disposition"]
    status, _ = api.raw(f"/v1/shops/{SHOP}/overview", format="xml")
    assert status == 400


def test_ledger_items_carry_the_shop_local_time(api: Api) -> None:
    doc = api.json(f"/v1/shops/{SHOP}/conversions", "/v1/shops/{shop_id}/conversions", limit="5")
    for item in doc["items"]:
        utc = datetime.fromisoformat(item["occurred_at"]).replace(microsecond=0)
        local = datetime.fromisoformat(item["local_time"])
        assert local == utc and local.utcoffset() == utc.astimezone(ZoneInfo(TZ)).utcoffset()
        assert item["local_time"][:10] == utc.astimezone(ZoneInfo(TZ)).date().isoformat()


async def _events(
    resp: aiohttp.ClientResponse, until: str, timeout_s: float
) -> list[tuple[str, Any]]:
    """Read SSE events until one named ``until`` arrives (or the time is up)."""
    out: list[tuple[str, Any]] = []
    name = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        try:
            line = await asyncio.wait_for(resp.content.readline(), deadline - loop.time())
        except TimeoutError:
            break
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            name = text[7:]
        elif text.startswith("data: "):
            out.append((name, json.loads(text[6:])))
            if name == until:
                return out
        elif text.startswith(":"):
            out.append(("heartbeat", None))
    return out


async def test_live_stream_pushes_a_change_within_two_seconds(api: Api) -> None:
    """One stream on each of two workers: the event is counted by whichever owns its partition,
    and both streams push it."""
    query = urlencode({**api.period, "groups": "1"})
    headers = {"Authorization": f"Bearer {api.admin}"}
    urls = [f"{w.url}/v1/shops/{SHOP}/live?{query}" for w in api.workers]  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as session:
        streams = [await session.get(url, headers=headers) for url in urls]
        try:
            before = []
            for resp in streams:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                first = await _events(resp, "groups", 5)
                assert [n for n, _ in first][:2] == ["overview", "groups"], first
                before.append(first[0][1]["metrics"]["conversions"])
            at = api.now + timedelta(seconds=1)
            await produce(
                api.bootstrap,  # type: ignore[attr-defined]
                api.topics,  # type: ignore[attr-defined]
                [upgrade(SHOP, "live-1", at, "banner", "control")],
            )
            sent = asyncio.get_running_loop().time()
            for i, resp in enumerate(streams):
                pushed = await _events(resp, "overview", 10)
                took = asyncio.get_running_loop().time() - sent
                overview = [d for n, d in pushed if n == "overview"]
                assert overview and overview[-1]["metrics"]["conversions"] == before[i] + 1, pushed
                assert took < 2.0, f"worker {i + 1}'s stream took {took:.2f} s"
            quiet = await _events(streams[0], "never", 1.2)
            assert ("heartbeat", None) in quiet, quiet
        finally:
            for resp in streams:
                resp.close()


async def no_open_streams(api: Api) -> None:
    """Earlier tests' streams are released within a push interval of their client leaving:
    wait until the worker's gauge says none is open."""
    deadline = time.monotonic() + 10
    while (held := total(await asyncio.to_thread(scrape, api.worker), "upsell_live_streams")) > 0:
        assert time.monotonic() < deadline, f"{held:g} live streams still open after 10 s"
        await asyncio.sleep(0.2)


async def test_live_stream_auth_bounds_and_bad_parameters(api: Api) -> None:
    url = f"{api.worker.url}/v1/shops/{SHOP}/live"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 401
        async with session.get(url, headers={"Authorization": f"Bearer {api.other}"}) as resp:
            assert resp.status == 403
        auth = {"Authorization": f"Bearer {api.admin}"}
        async with session.get(url, params={"period": "nope"}, headers=auth) as resp:
            assert resp.status == 400
        await no_open_streams(api)
        async with session.get(url, headers=auth) as one, session.get(url, headers=auth) as two:
            assert (one.status, two.status) == (200, 200)
            samples = await asyncio.to_thread(scrape, api.worker)
            assert total(samples, "upsell_live_streams") == 2, "the gauge of open streams"
            async with session.get(url, headers=auth) as three:
                assert three.status == 429
                assert (await three.json())["error"]["code"] == "too_many_streams"


async def test_a_long_live_stream_holds_no_heavy_query_slot(api: Api) -> None:
    """A stream over a year is a heavy query each time it computes, not for its whole life: with
    one heavy slot per worker, a year's overview still answers while the stream is open."""
    url = f"{api.worker.url}/v1/shops/{SHOP}/live"
    auth = {"Authorization": f"Bearer {api.admin}"}
    year = {"period": "year_to_date"} if api.now.month > 2 else {"period": "last_year"}
    async with aiohttp.ClientSession() as session:
        await no_open_streams(api)
        async with session.get(url, params=year, headers=auth) as stream:
            assert stream.status == 200
            await _events(stream, "overview", 5)
            samples = await asyncio.to_thread(scrape, api.worker)
            assert total(samples, "upsell_heavy_queries") == 0, "the stream holds a heavy slot"
            assert total(samples, "upsell_live_streams") == 1, "the gauge of open streams"
            overview = f"{api.worker.url}/v1/shops/{SHOP}/overview"
            async with session.get(overview, params=year, headers=auth) as resp:
                assert resp.status == 200, await resp.text()
