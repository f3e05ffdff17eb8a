"""The HTTP collector as a real process against the embedded broker and a real Redis: keys and
origins, kinds a key may send, limits (413, 429), dedupe, the clock rule, revocation through
the CLI, and schemathesis on the collector's own OpenAPI document."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from stream.devtools.workers import ROOT, WorkerProcess, http_get, http_post
from tests.support import openapi_check
from tests.support.collector_keys import make_key
from tests.support.collector_site import ORIGIN, SHOP, Site, now_iso, upgrade, view
from tests.support.e2e import collector_env, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_202_means_the_broker_holds_the_events_keyed_by_shop(site: Site) -> None:
    events = [view(), view(subscriber_id="s-1")]
    status, _, body = site.post(events, site.secret)
    assert status == 202, body
    assert body == {"accepted": 2, "duplicates": 0, "rejected": []}
    by_id = {e["event_id"]: e for e in site.views_in_topic()}
    for sent in events:
        got = by_id[sent["event_id"]]
        assert "kind" not in got and got["shop_id"] == SHOP
        assert got["received_at"].endswith("Z"), got
    records = asyncio.run(read_topic(site.bootstrap, site.topics.views))
    assert {r.key for r in records} == {SHOP.encode()}


def test_the_same_batch_again_is_not_produced_twice(site: Site) -> None:
    events = [view(), view()]
    assert site.post(events, site.secret)[2]["duplicates"] == 0
    again = site.post(events, site.secret)
    assert again[0] == 202 and again[2] == {"accepted": 2, "duplicates": 2, "rejected": []}
    ids = [e["event_id"] for e in site.views_in_topic()]
    assert all(ids.count(e["event_id"]) == 1 for e in events), ids


def test_public_key_only_from_its_origins(site: Site) -> None:
    for origin in ("https://evil.example", None, "https://shop-col.example.evil.example"):
        status, _, body = site.post([view()], site.public, origin=origin)
        assert status == 403 and body["error"]["code"] == "origin_not_allowed", (origin, body)
    status, headers, body = site.post([view()], site.public, origin=ORIGIN)
    assert status == 202, body
    assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_preflight_is_answered_for_allowed_origins_only(site: Site) -> None:
    url = f"{site.collect_url}?key={site.public}"
    status, headers, _ = http_post(url, b"", origin=ORIGIN, method="OPTIONS")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert http_post(url, b"", origin="https://evil.example", method="OPTIONS")[0] == 403


def test_beacon_as_text_plain_with_the_key_in_the_query(site: Site) -> None:
    body = orjson.dumps({"events": [view()]})
    url = f"{site.collect_url}?key={site.public}"
    status, _, raw = http_post(url, body, origin=ORIGIN, content_type="text/plain;charset=UTF-8")
    assert status == 202, raw


def test_public_key_may_not_send_upgrades(site: Site) -> None:
    status, _, body = site.post([upgrade(), view()], site.public, origin=ORIGIN)
    assert status == 202, body
    assert body["accepted"] == 1
    assert body["rejected"] == [{"index": 0, "reason": "kind_not_allowed"}]
    status, _, body = site.post([upgrade()], site.public, origin=ORIGIN)
    assert status == 400 and body["error"]["code"] == "all_rejected", body
    assert body["rejected"] == [{"index": 0, "reason": "kind_not_allowed"}]
    assert site.post([upgrade()], site.secret)[0] == 202


def test_an_event_for_another_shop_is_rejected_alone(site: Site) -> None:
    """Before: one foreign event made the whole batch a 403 wrong_shop."""
    other = make_key(site.redis_url, "shop-other", "secret")
    status, _, body = site.post([view(shop_id="shop-other"), view()], other)
    assert status == 202, body
    assert body["accepted"] == 1
    assert body["rejected"] == [{"index": 1, "reason": "wrong_shop"}]
    status, _, body = site.post([view()], other)
    assert status == 400 and body["error"]["code"] == "all_rejected", body
    assert body["rejected"] == [{"index": 0, "reason": "wrong_shop"}]


def test_times_at_the_ends_of_the_calendar_are_a_400_not_a_500(site: Site) -> None:
    doc = {"sent_at": "9999-12-31T00:00:00Z", "events": [view(occurred_at="0001-01-02T00:00:00Z")]}
    url = f"{site.collect_url}?key={site.public}"
    status, _, raw = http_post(url, orjson.dumps(doc), origin=ORIGIN)
    assert status == 400, raw


def test_a_preflight_without_a_key_and_other_content_types_are_refused(site: Site) -> None:
    status, headers, _ = http_post(site.collect_url, b"", origin=ORIGIN, method="OPTIONS")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    url = f"{site.collect_url}?key={site.public}"
    body = orjson.dumps({"events": [view()]})
    status, _, _ = http_post(url, body, origin=ORIGIN, content_type="application/octet-stream")
    assert status == 415


def test_unknown_key_and_bad_events(site: Site) -> None:
    assert site.post([view()], "usk_nope")[0] == 401
    assert site.post([view()], None)[0] == 401
    status, _, body = site.post([view(group_id=None), view(), {"kind": "nope"}], site.secret)
    assert status == 202, body
    assert body["rejected"] == [
        {"index": 0, "reason": "missing_field:group_id"},
        {"index": 2, "reason": "bad_value:kind"},
    ]


def test_too_large_and_too_many_events(site: Site) -> None:
    big = view(padding="x" * (64 * 1024))
    status, _, body = site.post([big], site.secret)
    assert status == 413 and body["error"]["code"] == "too_large", body
    status, _, body = site.post([view() for _ in range(101)], site.secret)
    assert status == 413 and body["error"]["code"] == "too_many_events", body


def test_rate_limited_per_key_with_retry_after(site: Site) -> None:
    key = make_key(site.redis_url, SHOP, "secret")
    junk = [{"kind": "banner_view"}] * 100  # tokens are taken before validation
    statuses = [site.post(junk, key)[0] for _ in range(3)]
    assert statuses == [400, 400, 400], statuses  # burst 300
    status, headers, body = site.post(junk, key)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert int(headers["Retry-After"]) >= 1
    assert site.post([view()], site.secret)[0] == 202, "another key is not limited"
    _, metrics = http_get(site.collector.url + "/metrics")
    assert b'upsell_collector_rate_limited_total{limit="key"}' in metrics


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(
    site: Site, tmp_path: Path
) -> None:
    """A collector that trusts 127.0.0.1 (where the test connects from) charges the right-most
    untrusted address of X-Forwarded-For; an entry a browser forged to its left changes nothing.
    The address limit is for public keys: a secret key from a limited address is not limited."""
    env = collector_env(
        site.bootstrap,
        site.redis_url,
        site.topics,
        UPSELL_COLLECTOR_ADDRESS_RATE="0.01",
        UPSELL_COLLECTOR_ADDRESS_BURST="200",
        UPSELL_COLLECTOR_TRUSTED_PROXIES="127.0.0.1/32, ::1",
    )
    proxied = WorkerProcess(env, tmp_path, name="proxied", role="collector")
    junk = orjson.dumps({"events": [{"kind": "banner_view"}] * 100})

    def post(forwarded_for: str, key: str | None = None) -> int:
        headers = {"X-Forwarded-For": forwarded_for}
        origin = None if key else ORIGIN
        url = proxied.url + "/v1/collect"
        return http_post(url, junk, key=key or site.public, origin=origin, headers=headers)[0]

    try:
        proxied.start().wait_ready()
        client = "203.0.113.7"
        assert [post(client), post(client)] == [400, 400], "the burst is 200 events"
        forged = post(f"198.51.100.1, {client}")
        assert forged == 429, f"a forged left-most hop got {forged}, not the client's 429"
        assert post("203.0.113.8") == 400, "another forwarded client shares the first's bucket"
        # a secret key sends from a server for many shops: limited per key, not per address
        assert post(client, key=site.secret) == 400, "a secret key shares the address's bucket"
        _, metrics = http_get(proxied.url + "/metrics")
        assert b'upsell_collector_rate_limited_total{limit="address"}' in metrics
    finally:
        proxied.stop()


def test_clock_rule_corrects_a_client_clock_that_is_off(site: Site) -> None:
    ahead = timedelta(days=1)  # the shopper's clock is a day ahead
    late = view(occurred_at=now_iso(ahead))
    status, _, body = site.post([late], site.secret)
    assert status == 400 and body["rejected"][0]["reason"] == "future_timestamp", body
    status, _, body = site.post([late], site.secret, sent_at=now_iso(ahead))
    assert status == 202, body
    got = next(e for e in site.views_in_topic() if e["event_id"] == late["event_id"])
    occurred = datetime.fromisoformat(got["occurred_at"])
    received = datetime.fromisoformat(got["received_at"])
    assert abs(occurred - received) < timedelta(seconds=30), got


def test_revoked_key_is_refused_within_seconds(site: Site) -> None:
    env = {**os.environ, "UPSELL_REDIS_URL": site.redis_url, "UPSELL_COLLECTOR_KEY_CACHE_S": "1"}
    cli = [sys.executable, "-m", "stream.cli", "key"]
    made = subprocess.run(
        [*cli, "add", "--shop", SHOP, "--kind", "public", "--origin", ORIGIN],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("upk_"), made.stdout
    assert site.post([view()], key, origin=ORIGIN)[0] == 202
    subprocess.run([*cli, "revoke", key], env=env, cwd=ROOT, timeout=60, check=True)
    revoked_at = time.monotonic()
    while site.post([view()], key, origin=ORIGIN)[0] != 401:
        assert time.monotonic() - revoked_at < 5, "the revoked key still works after 5 s"
        time.sleep(0.1)


def test_public_key_needs_an_origin(site: Site) -> None:
    env = {**os.environ, "UPSELL_REDIS_URL": site.redis_url}
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "key", "add", "--shop", SHOP, "--kind", "public"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--origin" in proc.stderr, proc.stderr


def test_snippet_and_ops_routes(site: Site) -> None:
    status, js = http_get(site.collector.url + "/v1/upsell.js")
    assert status == 200 and b"sendBeacon" in js and b"randomUUID" in js
    assert len(js) < 8 * 1024, f"the snippet is {len(js)} bytes"
    for path in ("/healthz", "/readyz", "/metrics", "/v1/openapi.json"):
        assert http_get(site.collector.url + path)[0] == 200, path
    _, metrics = http_get(site.collector.url + "/metrics")
    for name in (
        b"upsell_collector_requests_total",
        b"upsell_collector_events_accepted_total",
        b"upsell_collector_events_rejected_total",
        b"upsell_collector_produce_seconds_bucket",
    ):
        assert name in metrics, name


def test_schemathesis_on_the_collectors_openapi(site: Site, tmp_path: Path) -> None:
    key = make_key(site.redis_url, SHOP, "secret")
    output = openapi_check.schemathesis_run(site.collector.url, key, tmp_path)
    assert "POST /v1/collect" in output, output[-4000:]
