"""Erasing a subscriber, from outside: upgrades in through Kafka, counted by a worker; then
``upsell-stream subscriber erase`` (the CLI) and ``DELETE /v1/shops/{shop}/subscribers/{id}``
(the API, admin tokens only) take the subscriber out of the ledger and its CSV export, the
totals do not move, the same upgrade read again is not written back, and the erasure records
hold who and when but neither the subscriber's nor its orders' ids."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import ROOT, WorkerProcess, http_get
from stream.settings import Topics
from stream.state import keys
from tests.support.e2e import api_workers, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHOP = "shop-erase"
CLI = [sys.executable, "-m", "stream.cli"]


def _upgrade(subscriber: str, order: str, revenue: int) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=2)
    return {
        "event_id": f"up-{uuid.uuid4()}",
        "shop_id": SHOP,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "subscriber_id": subscriber,
        "order_id": order,
        "group_id": "annual-upgrade",
        "variation_id": "save-20",
        "from": {"product_ids": ["coffee"], "selling_plan_id": "monthly", "mrr_minor": 1500},
        "to": {"product_ids": ["coffee"], "selling_plan_id": "annual", "mrr_minor": 1250},
        "revenue_minor": revenue,
        "currency": "EUR",
    }


def _view() -> dict[str, Any]:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"event_id": f"v-{uuid.uuid4()}", "shop_id": SHOP, "occurred_at": at}


def _wait_for(metric: str, want: int, w: WorkerProcess, token: str) -> None:
    deadline = time.monotonic() + 60
    got = None
    while time.monotonic() < deadline:
        status, body = _get(w, token, "overview?period=today")
        got = json.loads(body)["metrics"][metric] if status == 200 else None
        if got == want:
            return
        time.sleep(0.25)
    raise AssertionError(f"{metric} is {got}, not {want}, after 60 s")


def _send(bootstrap: str, topics: Topics, kind: str, events: list[dict[str, Any]]) -> None:
    items = [(kind, SHOP.encode(), orjson.dumps(e)) for e in events]
    asyncio.run(produce(bootstrap, topics, items))


def _get(w: WorkerProcess, token: str, path: str) -> tuple[int, bytes]:
    return http_get(f"{w.url}/v1/shops/{SHOP}/{path}", token=token, timeout=10)


def _metrics(w: WorkerProcess, token: str) -> dict[str, Any]:
    status, body = _get(w, token, "overview?period=today")
    assert status == 200, body
    metrics: dict[str, Any] = json.loads(body)["metrics"]
    return metrics


def _delete(w: WorkerProcess, token: str, subscriber: str) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{w.url}/v1/shops/{SHOP}/subscribers/{subscriber}",
        method="DELETE",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_an_erased_subscriber_leaves_the_ledger_and_the_totals_stay(
    broker: EmbeddedBroker, redis_url: str, tmp_path: Path
) -> None:
    (w,), topics, (admin, merchant) = api_workers(
        broker.bootstrap, redis_url, tmp_path, "erase.", 1, [["*"], [SHOP]]
    )
    a1, a2 = _upgrade("sub-A", "order-A1", 1200), _upgrade("sub-A", "order-A2", 800)
    b1 = _upgrade("sub-B", "order-B1", 500)
    w.start().wait_ready()
    try:
        _send(broker.bootstrap, topics, "upgrade", [a1, a2, b1])
        _wait_for("conversions", 3, w, admin)
        before = _metrics(w, admin)
        _, csv_before = _get(w, admin, "conversions?period=today&format=csv")
        assert csv_before.count(b"sub-A") == 2 and b"order-A1" in csv_before

        erased = subprocess.run(
            [*CLI, "subscriber", "erase", "--shop", SHOP, "--subscriber", "sub-A", "--by", "dpo@x"],
            env={**os.environ, "UPSELL_REDIS_URL": redis_url},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert erased.returncode == 0 and erased.stderr == "", erased.stderr
        assert "erased: 2 ledger entries" in erased.stdout, erased.stdout

        status, body = _get(w, admin, "conversions?period=today")
        items = json.loads(body)["items"]
        assert status == 200 and [i["subscriber_id"] for i in items] == ["sub-B"], items
        _, csv_after = _get(w, admin, "conversions?period=today&format=csv")
        assert b"sub-A" not in csv_after and b"order-A" not in csv_after and b"sub-B" in csv_after
        assert _metrics(w, admin) == before  # conversions, revenue, unique upgraders ...

        # the same upgrade read again (a producer retry) is a duplicate: not written back
        _send(broker.bootstrap, topics, "upgrade", [a1])
        _send(broker.bootstrap, topics, "view", [_view() | {"group_id": "g", "variation_id": "a"}])
        _wait_for("banner_views", 1, w, admin)
        assert b"sub-A" not in _get(w, admin, "conversions?period=today&format=csv")[1]
        assert _metrics(w, admin)["conversions"] == 3

        # the API: a merchant's token may read the shop but not erase; an admin token may
        assert _delete(w, merchant, "sub-B")[0] == 403
        status, doc = _delete(w, admin, "sub-B")
        assert status == 200 and doc["ledger_entries_removed"] == 1, doc
        # the token's id: the first 12 hex characters of its SHA-256 (contract §7), not the token
        admin_id = hashlib.sha256(admin.encode()).hexdigest()[:12]
        assert doc["via"] == "api" and doc["by"] == f"token:{admin_id}", doc
        assert json.loads(_get(w, admin, "conversions?period=today")[1])["items"] == []
        after = _metrics(w, admin)
        assert after["conversions"] == 3 and after["revenue_minor"] == before["revenue_minor"]
    finally:
        w.stop()

    records: list[bytes] = redis.Redis.from_url(redis_url).lrange(keys.erasures(SHOP), 0, -1)  # type: ignore[assignment]
    text = b" ".join(records)
    assert len(records) == 2 and b"dpo@x" in text and b'"via":"api"' in text, records
    for erased_id in (b"sub-A", b"sub-B", b"order-A1", b"order-A2", b"order-B1"):
        assert erased_id not in text, records
