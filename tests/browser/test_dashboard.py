"""The dashboard in a real headless Chromium against a real worker fed through Kafka.

Figures on each tab must equal the API's for the same period; changing period and compare
changes them; a wrong token shows the access message; screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from stream.api.tokens_cli import add_token
from stream.embedded import EmbeddedBroker
from stream.settings import Topics
from stream.topics import ensure_topics
from tests.event_factory import SHOPS, mixed_events, settings_messages
from tests.integration.e2e import produce, worker_env, workers
from tests.workers import WorkerProcess, http_get

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
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
    import redis

    redis.Redis(port=redis_server.port).flushall()
    tmp = tmp_path_factory.mktemp("dash")
    topics = Topics("dash.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
    tokens = tmp / "tokens"
    admin = add_token(tokens, ["*"])
    env = worker_env(
        broker.bootstrap,
        redis_server.url,
        topics,
        "batch",
        UPSELL_AUTH="on",
        UPSELL_API_TOKENS=str(tokens),
    )
    (w,) = workers(env, tmp, 1)
    sent = mixed_events(8_000, seed=5)
    try:
        asyncio.run(produce(broker.bootstrap, topics, settings_messages()))
        w.start().wait_ready()
        asyncio.run(produce(broker.bootstrap, topics, [(s.kind, s.key, s.value) for s in sent]))
        s = Site(w, admin)
        want = sum(1 for x in sent if x.valid and x.kind == "view")
        for _ in range(120):
            got = sum(
                s.api(
                    f"/v1/shops/{shop}/overview",
                    period="custom",
                    **{"from": "2026-10-01", "to": "2026-12-31"},
                )["metrics"]["banner_views"]
                for shop in SHOPS
            )
            if got == want:
                break
            asyncio.run(asyncio.sleep(0.5))
        yield s
    finally:
        w.stop()


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


def test_tabs_show_the_apis_figures(site: Site, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
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
    page.get_by_test_id("date").fill("2026-11-02")
    page.get_by_test_id("date").dispatch_event("change")
    day = site.api(
        "/v1/shops/shop-utc/overview", period="date", date="2026-11-02", compare="previous_period"
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
    page.screenshot(path=str(ARTIFACTS / "overview-1280.png"), full_page=True)

    # groups tab: one row per group, the API's numbers, expandable to variations
    page.get_by_test_id("period").select_option("this_month")
    page.get_by_test_id("compare").select_option("")
    page.get_by_test_id("tab-groups").click()
    groups = site.api("/v1/shops/shop-utc/groups", period="this_month")["groups"]
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
    page.screenshot(path=str(ARTIFACTS / "groups-1280.png"), full_page=True)

    # conversions tab: newest first, load more
    page.get_by_test_id("tab-conversions").click()
    ledger = site.api("/v1/shops/shop-utc/conversions", period="this_month", limit="25")
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
    page.screenshot(path=str(ARTIFACTS / "conversions-1280.png"), full_page=True)
    page.close()


def test_narrow_screen(site: Site, browser: Any) -> None:
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
    page.screenshot(path=str(ARTIFACTS / "overview-390.png"), full_page=True)
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
