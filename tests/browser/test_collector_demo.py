"""The demo storefront in a real headless Chromium: its banner reports a view and a click with
/v1/upsell.js through the collector; once the page is closed the worker's API shows exactly
those counts, and the same beacon sent again is not counted twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import WorkerProcess, http_get, http_post
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.collector_keys import make_key
from tests.support.e2e import collector_env, read_topic, worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
SHOP = "store-browser"
# Playwright does not report a beacon sent while its page closes; the page keeps a copy of
# each batch it hands to the browser (beacon or fetch), in localStorage, which outlives the page
# in its context.
RECORD_SENDS = """
const record = (url, data) => {
  const seen = JSON.parse(localStorage.getItem("sends") || "[]");
  seen.push({url: String(url), body: String(data)});
  localStorage.setItem("sends", JSON.stringify(seen));
};
const beacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, data) => { record(url, data); return beacon(url, data); };
const fetch_ = window.fetch.bind(window);
window.fetch = (url, init) => {
  if (String(url).includes("/v1/collect")) record(url, init.body);  // not the snippet's config
  return fetch_(url, init);
};
"""


class Store:
    def __init__(self, worker: WorkerProcess, collector: WorkerProcess, topics: Topics) -> None:
        self.worker = worker
        self.collector = collector
        self.topics = topics

    def counts(self) -> tuple[int, int]:
        status, body = http_get(f"{self.worker.url}/v1/shops/{SHOP}/overview?period=today")
        assert status == 200, body
        metrics = json.loads(body)["metrics"]
        return int(metrics["banner_views"]), int(metrics["banner_clicks"])


@pytest.fixture(scope="module")
def store(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    tmp = tmp_path_factory.mktemp("store")
    topics = Topics("store.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
    (worker,) = workers(worker_env(broker.bootstrap, redis_server.url, topics, "batch"), tmp, 1)
    env = collector_env(broker.bootstrap, redis_server.url, topics)
    collector = WorkerProcess(env, tmp, name="collector", role="collector")
    public = make_key(redis_server.url, SHOP, "public", [collector.url])
    collector.env.update(UPSELL_COLLECTOR_DEMO_KEY=public, UPSELL_COLLECTOR_DEMO_SHOP=SHOP)
    try:
        worker.start()
        collector.start().wait_ready()
        worker.wait_ready()
        yield Store(worker, collector, topics)
    finally:
        collector.stop()
        worker.stop()


def wait_for_counts(store: Store, want: tuple[int, int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    got = store.counts()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.25)
        got = store.counts()
    assert got == want, f"(views, clicks) {got} != {want} after {timeout_s}s"


def test_banner_view_and_click_reach_the_api_once(store: Store) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context()
        context.add_init_script(RECORD_SENDS)
        page = context.new_page()
        page.goto(store.collector.url + "/demo-store")
        page.get_by_test_id("banner").wait_for()
        page.get_by_test_id("upgrade-button").click()
        page.get_by_test_id("thanks").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-store.png"))
        page.close(run_before_unload=True)
        wait_for_counts(store, (1, 1), 30)
        later = context.new_page()
        later.goto(store.collector.url + "/healthz")
        beacons: list[dict[str, str]] = json.loads(later.evaluate("localStorage.sends"))
        context.close()
        browser.close()

    # batched: one beacon when the page closes (a fetch first if the 2 s timer fired before)
    assert 1 <= len(beacons) <= 2, beacons
    sent = [orjson.loads(b["body"]) for b in beacons]
    events = [e for batch in sent for e in batch["events"]]
    assert [e["kind"] for e in events] == ["banner_view", "banner_click"], events
    assert all("sent_at" in batch for batch in sent)
    assert all(len(e["event_id"]) == 36 for e in events), "ids from crypto.randomUUID()"

    # the same beacons again, as a browser retry would send them: accepted, not counted
    duplicates = 0
    for beacon in beacons:
        status, _, body = http_post(
            beacon["url"],
            beacon["body"].encode(),
            origin=store.collector.url,
            content_type="text/plain;charset=UTF-8",
        )
        assert status == 202, body
        duplicates += json.loads(body)["duplicates"]
    assert duplicates == 2
    time.sleep(2)
    assert store.counts() == (1, 1)
    views = asyncio.run(read_topic(store.worker.env["UPSELL_KAFKA_BOOTSTRAP"], store.topics.views))
    assert len(views) == 1, "the repeated beacon reached the topic"


def test_a_503_is_sent_again_after_its_retry_after(store: Store) -> None:
    """The collector's first answer is a 503 with Retry-After: 1 (Playwright answers for it);
    the snippet sends the same events again a second later, and they are counted once."""
    from playwright.sync_api import Route, sync_playwright

    before = store.counts()
    attempts: list[tuple[float, list[str]]] = []

    def collector_busy_once(route: Route) -> None:
        ids = [e["event_id"] for e in orjson.loads(route.request.post_data or "{}")["events"]]
        attempts.append((time.monotonic(), ids))
        if len(attempts) == 1:
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Access-Control-Expose-Headers": "Retry-After"},
                json={"error": {"code": "unavailable", "message": "try again"}},
            )
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.route("**/v1/collect?*", collector_busy_once)
        page.goto(store.collector.url + "/demo-store")
        page.get_by_test_id("banner").wait_for()
        page.evaluate("upsell.flush()")  # the banner's view, now, by fetch
        want = (before[0] + 1, before[1])
        deadline = time.monotonic() + 30
        while store.counts() != want and time.monotonic() < deadline:
            page.wait_for_timeout(250)  # sync Playwright runs route handlers only in its calls
        assert store.counts() == want, f"(views, clicks) {store.counts()} != {want} after 30 s"
        browser.close()

    assert len(attempts) == 2, f"{len(attempts)} sends for one 503: {attempts}"
    (first, ids), (second, again) = attempts
    assert ids == again and len(ids) == 1, f"the retry sent other events: {ids} then {again}"
    assert second - first >= 0.9, f"retried {second - first:.2f} s after a Retry-After of 1 s"
    time.sleep(2)
    assert store.counts() == (before[0] + 1, before[1]), "the retried view counted twice"


def test_a_consent_key_stores_and_sends_nothing_before_consent(store: Store) -> None:
    """A page whose key was made with consent required: views and clicks wait in memory (no
    visitor id in localStorage, no request to /v1/collect) until upsell.consent(true); then
    they are counted. The page is the collector's own /healthz, with the snippet added."""
    from playwright.sync_api import Request, sync_playwright

    redis_url = store.collector.env["UPSELL_REDIS_URL"]
    key = make_key(redis_url, SHOP, "public", [store.collector.url], consent_required=True)
    before = store.counts()
    collects: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()

        def seen(request: Request) -> None:
            if "/v1/collect" in request.url:
                collects.append(request.method)

        page.on("request", seen)
        page.goto(store.collector.url + "/healthz")
        page.add_script_tag(url=store.collector.url + "/v1/upsell.js")
        page.evaluate(
            f"upsell.init({{endpoint: location.origin, key: {json.dumps(key)}, "
            f"shop: {json.dumps(SHOP)}}});"
            "upsell.view({group: 'g', variation: 'a'}); upsell.click({group: 'g', variation: 'a'});"
        )
        page.wait_for_timeout(3000)  # past the 2 s batch timer and the config answer
        page.evaluate("upsell.flush()")
        assert page.evaluate("Object.keys(localStorage)") == []
        assert collects == [], collects
        assert store.counts() == before
        page.evaluate("upsell.consent(true)")
        want = (before[0] + 1, before[1] + 1)
        deadline = time.monotonic() + 30
        while store.counts() != want and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert store.counts() == want
        assert page.evaluate("Object.keys(localStorage)") == ["upsell.visitor"]
        browser.close()
