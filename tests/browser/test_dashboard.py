"""The dashboard in a real headless Chromium against a real worker fed through Kafka.

Figures on each tab must equal the API's for the same period; changing period and compare
changes them; a wrong token shows the access message; screenshots land in pytest's temporary
folder (``screenshots<N>`` under its base temp, e.g. /tmp/pytest-of-$USER/pytest-current/).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess, http_get
from stream.settings import Topics
from tests.support.e2e import api_workers, produce
from tests.support.event_factory import (
    FIRST_DAY,
    SHOPS,
    SWITCH_DAY,
    mixed_events,
    settings_messages,
)
from tests.support.experiment_events import arms, shop_message, upgrade, views_of

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(240)]

T = TypeVar("T")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


class Site:
    def __init__(self, worker: WorkerProcess, admin: str) -> None:
        self.worker = worker
        self.admin = admin

    def api(self, path: str, **params: str) -> Any:
        return api_json(f"{self.worker.url}{path}?{urlencode(params)}", self.admin)


def api_json(url: str, token: str) -> Any:
    """The API's answer, read as a polite client reads it: the test shares its token with the
    dashboard it drives, so a 429 (the token's share of heavy queries is taken by the page) is
    retried after its Retry-After, a few times, and anything else but 200 fails the test."""
    for _ in range(10):
        status, body = http_get(url, token=token, timeout=10)
        if status != 429:
            break
        time.sleep(1.0)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def site(
    broker: EmbeddedBroker, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    (w,), topics, (admin,) = api_workers(
        broker.bootstrap, redis_server.url, tmp_path_factory.mktemp("dash"), "dash.", 1, [["*"]]
    )
    sent = mixed_events(8_000, seed=5)
    try:
        asyncio.run(produce(broker.bootstrap, topics, settings_messages()))
        w.start().wait_ready()
        asyncio.run(produce(broker.bootstrap, topics, [(s.kind, s.key, s.value) for s in sent]))
        s = Site(w, admin)
        want = sum(1 for x in sent if x.valid and x.kind == "view")
        # every day of the traffic in every shop's zone: from the day before its first UTC
        # midnight (New York's evening) to tomorrow (India is ahead of UTC)
        every_day = {
            "from": (FIRST_DAY - timedelta(days=1)).isoformat(),
            "to": (datetime.now(UTC).date() + timedelta(days=1)).isoformat(),
        }
        got = 0
        for _ in range(120):
            got = sum(
                s.api(f"/v1/shops/{shop}/overview", period="custom", **every_day)["metrics"][
                    "banner_views"
                ]
                for shop in SHOPS
            )
            if got == want:
                break
            asyncio.run(asyncio.sleep(0.5))
        assert got == want, f"the worker counted {got} of {want} views in 60 s"
        yield s
    finally:
        w.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _fmt(n: int) -> str:
    return f"{n:,}"


def _login(page: Any, site: Site, token: str) -> None:
    page.goto(site.worker.url + "/")
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("token-submit").click()


def _card(page: Any, name: str) -> str:
    return str(page.get_by_test_id(f"value-{name}").inner_text())


def test_tabs_show_the_apis_figures(site: Site, browser: Any, screenshots: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    _login(page, site, site.admin)
    page.get_by_test_id("shop").select_option("shop-utc")
    page.get_by_test_id("period").select_option("this_month")
    api = site.api("/v1/shops/shop-utc/overview", period="this_month")
    page.wait_for_function(
        "v => document.querySelector('[data-testid=value-banner_views]')?.textContent === v",
        arg=_fmt(api["metrics"]["banner_views"]),
        timeout=15_000,
    )
    for name in ("banner_views", "banner_clicks", "conversions", "downgrades", "unique_upgraders"):
        assert _card(page, name) == _fmt(api["metrics"][name]), name
    page.wait_for_function(
        "() => document.querySelector('[data-testid=live]').textContent.startsWith('live')",
        timeout=5_000,
    )
    assert "live · updated" in page.get_by_test_id("live").inner_text()
    rows = page.locator("[data-testid=daily] tbody tr")
    series = site.api("/v1/shops/shop-utc/timeseries", period="this_month", interval="day")
    assert rows.count() == len(series["points"])

    # another period, with a comparison: figures follow
    page.get_by_test_id("period").select_option("last_month")
    page.get_by_test_id("compare").select_option("previous_period")
    last = site.api("/v1/shops/shop-utc/overview", period="last_month", compare="previous_period")
    page.wait_for_function(
        "v => document.querySelector('[data-testid=value-banner_views]')?.textContent === v",
        arg=_fmt(last["metrics"]["banner_views"]),
        timeout=15_000,
    )
    assert last["metrics"]["banner_views"] != api["metrics"]["banner_views"]
    assert _card(page, "conversions") == _fmt(last["metrics"]["conversions"])
    # one day against the day before: both have data, so the change is a percentage
    page.get_by_test_id("period").select_option("date")
    day_after_switch = (SWITCH_DAY + timedelta(days=1)).isoformat()
    page.get_by_test_id("date").fill(day_after_switch)
    page.get_by_test_id("date").dispatch_event("change")
    day = site.api(
        "/v1/shops/shop-utc/overview",
        period="date",
        date=day_after_switch,
        compare="previous_period",
    )
    change = day["compare"]["change"]["banner_views"]
    arrow = "▲" if change >= 0 else "▼"
    page.wait_for_function(
        "t => document.querySelector('[data-testid=change-banner_views]').textContent"
        ".startsWith(t)",
        arg=f"{arrow} {change * 100:.1f} %",
        timeout=10_000,
    )
    cls = page.get_by_test_id("change-banner_views").get_attribute("class")
    assert ("up" if change >= 0 else "down") in (cls or "")
    page.screenshot(path=str(screenshots / "overview-1280.png"), full_page=True)

    # groups tab: one row per group, the API's numbers, expandable to variations; over the
    # traffic's last 31 days at most (this month has next to none on its first day; longer
    # queries are rationed)
    today = datetime.now(UTC).date()
    first = max(FIRST_DAY, today - timedelta(days=30))
    window = {"from": first.isoformat(), "to": today.isoformat()}
    page.get_by_test_id("compare").select_option("")
    page.get_by_test_id("period").select_option("custom")
    for end in ("from", "to"):
        page.get_by_test_id(end).fill(window[end])
        page.get_by_test_id(end).dispatch_event("change")
    page.get_by_test_id("tab-groups").click()
    groups = site.api("/v1/shops/shop-utc/groups", period="custom", **window)["groups"]
    assert groups, f"no groups in {window}"
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=group-row]').length === n",
        arg=len(groups),
        timeout=15_000,
    )
    first = page.locator("[data-testid=group-row]").first
    cells = first.locator("td").all_inner_texts()
    assert cells[0] == groups[0]["group_id"]
    assert cells[1:4] == [
        _fmt(groups[0]["metrics"][k]) for k in ("banner_views", "banner_clicks", "conversions")
    ]
    first.click()
    page.wait_for_selector("[data-testid=group-detail] [data-testid=variation]", timeout=15_000)
    page.screenshot(path=str(screenshots / "groups-1280.png"), full_page=True)

    # conversions tab: newest first, load more
    page.get_by_test_id("tab-conversions").click()
    ledger = site.api("/v1/shops/shop-utc/conversions", period="custom", limit="25", **window)
    assert ledger["items"], f"no conversions in {window}"
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=conversion-row]').length === n",
        arg=len(ledger["items"]),
        timeout=15_000,
    )
    assert (
        page.locator("[data-testid=conversion-row]").first.locator("td").first.inner_text()
        == ledger["items"][0]["subscriber_id"]
    )
    if ledger["next_cursor"]:
        page.get_by_test_id("load-more").click()
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=conversion-row]').length > n",
            arg=len(ledger["items"]),
            timeout=15_000,
        )
    page.screenshot(path=str(screenshots / "conversions-1280.png"), full_page=True)
    page.close()


def test_narrow_screen(site: Site, browser: Any, screenshots: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="en-US")
    _login(page, site, site.admin)
    page.get_by_test_id("shop").select_option("shop-ny")
    page.wait_for_function(
        "() => /\\d/.test(document.querySelector('[data-testid=value-banner_views]')"
        "?.textContent || '')",
        timeout=15_000,
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page scrolls sideways at 390 px ({width}px)"
    page.screenshot(path=str(screenshots / "overview-390.png"), full_page=True)
    page.close()


def test_wrong_token_shows_the_access_message(site: Site, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")
    _login(page, site, "not-a-token")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=message]').textContent.includes('not valid')",
        timeout=10_000,
    )
    assert page.get_by_test_id("login").is_visible()
    assert page.evaluate("sessionStorage.getItem('upsell.token')") is None
    page.close()


# -- decisions, CSV, live push and shop-local dates, on a shop in Pacific/Auckland ----------------

AKL, AKL_TZ = "akl", "Pacific/Auckland"
# (exposed subscribers, converted) per variation: 2 % vs 4.5 % is found by the always-valid
# interval at 2,000 subscribers each (3 % vs 4.5 % was not: half-width 0.018 > 0.015)
AKL_BANNER = {"control": (2000, 40), "discount-10": (2000, 90), "free-month": (2000, 42)}
AKL_SPLIT = {"a": (900, 10), "b": (600, 8)}  # meant to split equally: trips the SRM check


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a loop of its own thread: Playwright's sync API holds this one's."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Auckland:
    def __init__(self, worker: WorkerProcess, admin: str, bootstrap: str, topics: Any) -> None:
        self.worker, self.admin, self.bootstrap, self.topics = worker, admin, bootstrap, topics
        self.now = datetime.now(UTC)
        self.today = self.now.astimezone(ZoneInfo(AKL_TZ)).date()
        # the latest 09:34 in Auckland, a day earlier in UTC (20:34 or 21:34)
        local = self.now.astimezone(ZoneInfo(AKL_TZ)).replace(hour=9, minute=34, second=0)
        if local > self.now:
            local -= timedelta(days=1)
        self.morning = local.replace(microsecond=0)
        self.period = {
            "period": "custom",
            "from": (self.today - timedelta(days=1)).isoformat(),
            "to": self.today.isoformat(),
        }

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.worker.url}{path}?{urlencode({**self.period, **params})}"
        return api_json(url, self.admin)


@pytest.fixture(scope="module")
def akl(
    site: Site, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Auckland]:
    """A second shop on the same worker and topics as ``site``."""
    topics = Topics("dash.")
    a = Auckland(site.worker, site.admin, broker.bootstrap, topics)
    morning = upgrade(AKL, "akl-morning", a.morning, "banner", "control", currency="NZD")
    messages = [
        *arms(AKL, "banner", AKL_BANNER, a.now),
        *arms(AKL, "split", AKL_SPLIT, a.now),
        morning,
    ]
    _run(produce(broker.bootstrap, topics, [shop_message(AKL, AKL_TZ, "NZD")]))
    _run(produce(broker.bootstrap, topics, messages))
    want = views_of(AKL_BANNER) + views_of(AKL_SPLIT)
    for _ in range(120):
        if a.api(f"/v1/shops/{AKL}/overview")["metrics"]["banner_views"] == want:
            break
        time.sleep(0.5)
    assert a.api(f"/v1/shops/{AKL}/overview")["metrics"]["banner_views"] == want, "not counted"
    yield a


def _open_akl(page: Any, a: Auckland, tab: str) -> None:
    _login(page, Site(a.worker, a.admin), a.admin)
    page.get_by_test_id("shop").select_option(AKL)
    page.get_by_test_id("period").select_option("custom")
    page.get_by_test_id("from").fill(a.period["from"])
    page.get_by_test_id("to").fill(a.period["to"])
    page.get_by_test_id("to").dispatch_event("change")
    page.get_by_test_id(f"tab-{tab}").click()


def test_groups_tab_shows_the_verdict_intervals_and_srm(
    akl: Auckland, browser: Any, screenshots: Path
) -> None:
    doc = akl.api(f"/v1/shops/{AKL}/groups/banner")
    verdict = doc["verdict"]
    assert verdict["winner"] == "discount-10", verdict
    p = verdict["p_value_adjusted"]
    want = (
        f"discount-10 converts {round(verdict['lift'] * 100)} % better than control "
        f"({'p < 0.001' if p < 0.001 else f'p = {p:.3f}'}, valid however often you look)"
    )
    run = doc["experiment"]
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 900}, locale="en-US")
        _open_akl(page, akl, "groups")
        banner = page.locator("[data-testid=decision][data-group=banner]")
        banner.wait_for(timeout=15_000)
        assert banner.get_by_test_id("verdict").inner_text() == want
        days = f"{run['days_running']} days running (since {run['from']})"
        assert (
            banner.get_by_test_id("run")
            .inner_text()
            .startswith(f"6,000 exposed subscribers, {days}")
        )
        bars = banner.get_by_test_id("interval-bar")
        assert bars.count() == 3
        for i in range(3):
            bar = bars.nth(i)
            v = doc["variations"][i]
            lo, hi = v["stats"]["conversion_rate_ci95"]
            assert f"({lo * 100:.2f} % \u2013 {hi * 100:.2f} %)" in bar.inner_text()
            assert "2,000 subscribers" in bar.inner_text()
            interval = bar.get_by_test_id("interval").bounding_box()
            rate = bar.locator(".bar").bounding_box()
            assert interval["width"] > 0
            end = rate["x"] + rate["width"]
            assert interval["x"] <= end <= interval["x"] + interval["width"] + 1, v
        assert banner.get_by_test_id("srm-warning").count() == 0
        split = page.locator("[data-testid=decision][data-group=split]")
        assert "Sample-ratio mismatch" in split.get_by_test_id("srm-warning").inner_text()
        assert split.get_by_test_id("verdict").inner_text().startswith("no clear winner yet")
        width_px = page.evaluate("document.documentElement.scrollWidth")
        assert width_px <= width, f"page scrolls sideways at {width} px ({width_px}px)"
        page.screenshot(path=str(screenshots / f"groups-{width}.png"), full_page=True)
        page.close()


def test_csv_download_from_the_groups_tab(akl: Auckland, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    _open_akl(page, akl, "groups")
    page.locator("[data-testid=decision][data-group=banner]").wait_for(timeout=15_000)
    with page.expect_download(timeout=10_000) as info:
        page.locator("#groups [data-testid=download-csv]").click()
    download = info.value
    assert (
        download.suggested_filename == f"{AKL}-groups-{akl.period['from']}-{akl.period['to']}.csv"
    )
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    by_key = {(r["group_id"], r["variation_id"]): r for r in rows}
    assert set(by_key) == {("banner", v) for v in AKL_BANNER} | {("split", v) for v in AKL_SPLIT}
    assert by_key[("banner", "discount-10")]["significant"] == "True"
    assert by_key[("banner", "discount-10")]["currency"] == "NZD"
    page.close()


def test_ledger_shows_the_shops_local_date_and_selling_plans(
    akl: Auckland, browser: Any, screenshots: Path
) -> None:
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 900}, locale="en-US")
        _open_akl(page, akl, "conversions")
        rows = page.locator("[data-testid=conversion-row]")
        rows.first.wait_for(timeout=15_000)
        row = rows.filter(has_text="sub-akl-morning")
        for _ in range(20):  # the oldest conversion: on a later page of the ledger
            if row.count() or not page.get_by_test_id("load-more").is_visible():
                break
            seen = rows.count()
            page.get_by_test_id("load-more").click()
            page.wait_for_function(
                "n => document.querySelectorAll('[data-testid=conversion-row]').length > n",
                arg=seen,
                timeout=10_000,
            )
        assert row.count() == 1, "the Auckland morning conversion is not in the ledger"
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == f"{akl.morning.date().isoformat()} 09:34", cells
        utc_day = akl.morning.astimezone(UTC).date()
        assert utc_day != akl.morning.date()  # the browser's or UTC's date would be the day before
        assert cells[2] == "pro, monthly → pro, annual"
        page.screenshot(path=str(screenshots / f"conversions-{width}.png"), full_page=True)
        page.close()


def test_a_produced_event_arrives_through_the_live_stream(
    akl: Auckland, browser: Any, screenshots: Path
) -> None:
    for width in (390, 1280):
        page = browser.new_page(viewport={"width": width, "height": 900}, locale="en-US")
        _open_akl(page, akl, "overview")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=live]').dataset.mode === 'stream'",
            timeout=10_000,
        )
        assert "streaming" in page.get_by_test_id("live").inner_text()
        before = akl.api(f"/v1/shops/{AKL}/overview")["metrics"]["conversions"]
        page.wait_for_function(
            "v => document.querySelector('[data-testid=value-conversions]')?.textContent === v",
            arg=_fmt(before),
            timeout=10_000,
        )
        page.screenshot(path=str(screenshots / f"overview-{width}.png"), full_page=True)
        event = upgrade(AKL, f"akl-live-{width}", datetime.now(UTC), "banner", "free-month")
        _run(produce(akl.bootstrap, akl.topics, [event]))
        started = time.monotonic()
        page.wait_for_function(
            "v => document.querySelector('[data-testid=value-conversions]')?.textContent === v",
            arg=_fmt(before + 1),
            timeout=5_000,
        )
        took = time.monotonic() - started
        assert took < 2.0, f"the dashboard showed the event after {took:.2f} s"
        page.close()


# -- the chart: hover values equal the API's (issue 36) -------------------------------------------


def _shown_money(text: str) -> set[int]:
    """The minor amounts a revenue cell shows: "$1,100.00 · €12.00" -> {110000, 1200}."""
    return {int("".join(c for c in part if c.isdigit())) for part in text.split(" · ")}


def _expected_row(point: dict[str, Any]) -> dict[str, Any]:
    m = point["metrics"]
    rate = m["conversion_rate"]
    label = (
        point["start"]
        if point["start"] == point["end"]
        else f"{point['start']} \u2013 {point['end']}"
    )
    return {
        "date": label,
        "banner_views": _fmt(m["banner_views"]),
        "banner_clicks": _fmt(m["banner_clicks"]),
        "conversions": _fmt(m["conversions"]),
        "conversion_rate": "\u2013" if rate is None else f"{rate * 100:.2f} %",
        "revenue_minor": {v for v in m["revenue_minor"].values() if v} or {0},
    }


def _shown_row(page: Any, testid: str) -> dict[str, Any]:
    row = page.locator(f"[data-testid=chart-values] [data-testid={testid}]")
    cells = {
        str(c.get_attribute("data-metric")): c.inner_text().strip()
        for c in row.locator("[data-metric]").all()
    }
    cells["date"] = cells["date"].removesuffix(" (compared)")
    cells["revenue_minor"] = _shown_money(cells["revenue_minor"])
    return cells


def _hover_point(page: Any, i: int) -> None:
    """Move the mouse over point ``i`` of the upper chart, where uPlot draws it (1 px inside the
    plot at its ends: the last point sits on the right edge, where the axis begins)."""
    page.get_by_test_id("chart-traffic").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """i => { const u = chartState.plots[0], r = u.over.getBoundingClientRect();
                  const x = Math.min(r.width - 1, Math.max(1, u.valToPos(u.data[0][i], 'x')));
                  return [r.left + x, r.top + r.height / 2]; }""",
        i,
    )
    page.mouse.move(x, y)
    page.wait_for_function(
        "i => document.querySelector('[data-testid=chart-values]').dataset.idx === String(i)",
        arg=i,
        timeout=5_000,
    )


def _set_window(page: Any, window: dict[str, str]) -> None:
    page.get_by_test_id("period").select_option("custom")
    for end in ("from", "to"):
        page.get_by_test_id(end).fill(window[end])
        page.get_by_test_id(end).dispatch_event("change")


def test_hovering_the_chart_shows_the_apis_values_for_that_day(
    site: Site, browser: Any, screenshots: Path
) -> None:
    today = datetime.now(UTC).date()
    window = {
        "from": max(FIRST_DAY, today - timedelta(days=13)).isoformat(),
        "to": today.isoformat(),
    }
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
    _login(page, site, site.admin)
    page.get_by_test_id("shop").select_option("shop-utc")
    page.get_by_test_id("compare").select_option("previous_period")
    _set_window(page, window)
    for interval in ("day", "week"):
        page.get_by_test_id("interval").select_option(interval)
        ts = site.api(
            "/v1/shops/shop-utc/timeseries",
            period="custom",
            compare="previous_period",
            interval=interval,
            **window,
        )
        points, compared = ts["points"], ts["compare"]["points"]
        assert sum(p["metrics"]["banner_views"] for p in points) > 0, window
        page.wait_for_function(
            "n => chartState.ts && chartState.ts.points.length === n "
            "&& chartState.plots[0].data[0].length === n",
            arg=len(points),
            timeout=15_000,
        )
        busiest = max(
            range(len(points)), key=lambda i: sum(points[i]["metrics"]["revenue_minor"].values())
        )
        for i in sorted({0, busiest, len(points) - 1}):
            _hover_point(page, i)
            assert _shown_row(page, "values-period") == _expected_row(points[i]), (interval, i)
            if i < len(compared):  # weeks: the compared period may hold one fewer
                want = _expected_row(compared[i])
                assert _shown_row(page, "values-compared") == want, (interval, i)
            else:
                assert "no data" in page.get_by_test_id("values-compared").inner_text()
        # the keyboard reaches the same values: Home, then one step right
        page.get_by_test_id("chart-plots").focus()
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        assert page.get_by_test_id("chart-values").get_attribute("data-idx") == "1"
        assert _shown_row(page, "values-period") == _expected_row(points[1])
    # both charts have axes with ticks: dates below, counts, money and rates beside
    ticks = page.evaluate(
        "() => chartState.plots.map(u => u.axes.map(a => (a._values || []).filter(v => v !== '')))"
    )
    traffic, revenue = ticks
    assert len(traffic[0]) >= 2 and len(traffic[1]) >= 2, traffic
    assert len(revenue[1]) >= 2 and all(v.endswith("%") for v in revenue[2]), revenue
    page.screenshot(path=str(screenshots / "chart-1280.png"), full_page=True)
    page.close()


# -- the Groups tab: each group's variations once; tabs; axe-core ---------------------------------

# Holds the answers for the second group back for 1 s and counts the /groups requests in flight,
# so a click and a second render overlap the way a live push did in the demo.
SLOW_SECOND_GROUP = """
window.groupFetches = 0;
const fetch_ = window.fetch.bind(window);
window.fetch = async (url, init) => {
  const path = String(url);
  if (!path.includes("/groups")) return fetch_(url, init);
  window.groupFetches++;
  try {
    if (path.includes("/groups/split")) await new Promise((r) => setTimeout(r, 1000));
    return await fetch_(url, init);
  } finally { window.groupFetches--; }
};
"""


def _variations_per_group(page: Any) -> dict[str, int]:
    out: dict[str, int] = page.evaluate(
        """() => { const n = {};
               document.querySelectorAll('[data-testid=group-detail]').forEach(d => {
                 const g = d.previousElementSibling.dataset.key;
                 n[g] = (n[g] || 0) + d.querySelectorAll('[data-testid=variation]').length; });
               return n; }"""
    )
    return out


def _settled(page: Any, groups: int) -> None:
    page.wait_for_function(
        "n => window.groupFetches === 0 "
        "&& document.querySelectorAll('[data-testid=group-detail]').length >= n",
        arg=groups,
        timeout=15_000,
    )


def test_each_groups_variations_show_once(akl: Auckland, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    page.add_init_script(SLOW_SECOND_GROUP)
    _open_akl(page, akl, "groups")
    rows = page.locator("[data-testid=group-row]")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=group-row]').length === 2 "
        "&& window.groupFetches === 0",
        timeout=15_000,
    )
    assert rows.nth(1).get_attribute("data-key") == "split"
    # expand the second group, and render again while its answer is held back
    rows.nth(1).click()
    page.get_by_test_id("tab-groups").click()
    _settled(page, 1)
    assert _variations_per_group(page) == {"split": len(AKL_SPLIT)}
    assert rows.nth(1).locator("button").get_attribute("aria-expanded") == "true"
    # then the first, while a pushed event re-renders the tab
    rows.nth(0).click()
    _run(
        produce(
            akl.bootstrap, akl.topics, [upgrade(AKL, "akl-groups", datetime.now(UTC), "split", "a")]
        )
    )
    page.get_by_test_id("tab-groups").click()
    _settled(page, 2)
    assert _variations_per_group(page) == {"banner": len(AKL_BANNER), "split": len(AKL_SPLIT)}
    # collapsing one leaves the other's once
    rows.nth(1).click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=group-detail]').length === 1", timeout=10_000
    )
    _settled(page, 1)
    assert _variations_per_group(page) == {"banner": len(AKL_BANNER)}
    page.close()


def test_tabs_have_aria_roles_and_arrow_keys(site: Site, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    _login(page, site, site.admin)
    tablist = page.get_by_role("tablist")
    tablist.wait_for(timeout=10_000)
    names = [t.inner_text() for t in tablist.get_by_role("tab").all()]
    assert names == ["Overview", "Groups", "Conversions"]

    def selected() -> str:
        return str(tablist.get_by_role("tab", selected=True).inner_text())

    assert selected() == "Overview"
    assert page.get_by_role("tabpanel", name="Overview").is_visible()
    page.get_by_role("tab", name="Overview").focus()
    for key, want in (
        ("ArrowRight", "Groups"),
        ("ArrowRight", "Conversions"),
        ("ArrowRight", "Overview"),
        ("ArrowLeft", "Conversions"),
        ("Home", "Overview"),
        ("End", "Conversions"),
    ):
        page.keyboard.press(key)
        assert selected() == want, key
        assert page.evaluate("document.activeElement.textContent") == want
        assert page.get_by_role("tabpanel", name=want).is_visible()
        others = page.locator("[role=tab][aria-selected=false]")
        assert others.count() == 2 and all(
            t.get_attribute("tabindex") == "-1" for t in others.all()
        )
    page.close()


AXE = files("axe_playwright_python").joinpath("axe.min.js").read_text()


def _serious_violations(page: Any, where: str) -> list[str]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    page.evaluate(AXE)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(akl: Auckland, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    page.goto(akl.worker.url + "/")
    page.get_by_test_id("token-input").wait_for()
    found = _serious_violations(page, "login")
    _open_akl(page, akl, "overview")
    page.wait_for_function("() => chartState.plots.length === 2", timeout=15_000)
    _hover_point(page, 0)
    found += _serious_violations(page, "overview")
    page.get_by_test_id("tab-groups").click()
    page.locator("[data-testid=group-row]").first.click()
    page.locator("[data-testid=group-detail] [data-testid=variation]").first.wait_for(
        timeout=15_000
    )
    found += _serious_violations(page, "groups")
    page.get_by_test_id("tab-conversions").click()
    page.locator("[data-testid=conversion-row]").first.wait_for(timeout=15_000)
    found += _serious_violations(page, "conversions")
    assert not found, "\n".join(found)


def test_group_details_are_fetched_two_at_a_time_and_retried_after_a_429(
    akl: Auckland, browser: Any
) -> None:
    """The shop's group list is answered with 6 groups (4 of them copies of the banner group)
    and the first request for each detail answers 429 with Retry-After: 1 (a token past its
    share): every card appears, each detail asked twice, never more than 2 at once (before:
    Promise.all asked for every detail at once, and the first 429 failed the whole tab until
    the next refresh)."""
    listed = akl.api(f"/v1/shops/{AKL}/groups")
    banner = akl.api(f"/v1/shops/{AKL}/groups/banner")
    extra = [f"copy-{i}" for i in range(4)]
    listed["groups"] += [{**listed["groups"][0], "group_id": g} for g in extra]
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    asked: list[str] = []
    # fetches of a group's detail for the cards in flight, counted in the page
    page.add_init_script(
        """window.__details = { now: 0, peak: 0 };
        const fetchBefore = window.fetch;
        window.fetch = async (...args) => {
          // the overview's headline asks for up to 3 details, one by one: not the cards'
          const detail = /\\/groups\\/[^?]+/.test(String(args[0]))
            && !/renderHeadline/.test(new Error().stack);
          if (detail) { __details.now++; __details.peak = Math.max(__details.peak, __details.now); }
          try { return await fetchBefore(...args); } finally { if (detail) __details.now--; }
        };"""
    )

    def group_of(url: str) -> str | None:
        tail = url.split(f"/v1/shops/{AKL}/groups", 1)[-1].split("?", 1)[0]
        return tail[1:] if tail.startswith("/") else None

    def list_groups(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(listed))

    def details(route: Any) -> None:
        group = group_of(route.request.url)
        assert group is not None
        first = group not in asked
        asked.append(group)
        if first:
            route.fulfill(
                status=429,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body='{"error": {"code": "too_many_requests", "message": "share taken"}}',
            )
        elif group in extra:
            doc = {**banner, "group_id": group}
            route.fulfill(status=200, content_type="application/json", body=json.dumps(doc))
        else:
            route.continue_()

    page.route(f"**/v1/shops/{AKL}/groups?*", list_groups)
    page.route(f"**/v1/shops/{AKL}/groups/*", details)
    _open_akl(page, akl, "groups")
    for group in ["banner", "split", *extra]:
        card = page.locator(f"[data-testid=decision][data-group={group}]")
        card.wait_for(timeout=20_000)
    peak = page.evaluate("window.__details.peak")
    assert peak <= 2, f"{peak} group details asked at once"
    for group in ["banner", "split", *extra]:
        assert asked.count(group) >= 2, asked
    page.close()
