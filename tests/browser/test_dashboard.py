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
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess, http_get
from stream.settings import Topics
from tests.event_factory import FIRST_DAY, SHOPS, SWITCH_DAY, mixed_events, settings_messages
from tests.experiment_events import arms, shop_message, upgrade, views_of
from tests.integration.e2e import api_workers, produce

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
        status, body = http_get(f"{self.worker.url}{path}?{urlencode(params)}", token=self.admin)
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
        status, body = http_get(url, token=self.admin, timeout=10)
        assert status == 200, body
        return json.loads(body)


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
