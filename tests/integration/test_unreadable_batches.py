"""A batch no client can read (a wrong CRC, garbage in a gzip batch) mid-stream: the worker
dead-letters its offset range, counts it in a metric, counts every readable record around it
(read over HTTP) and never restarts. Both engines (before stream/engines/faust/unreadable.py the
Faust worker exited on the first such batch, and again after each restart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import http_get
from stream.settings import Topics
from tests.support.dead_letters import dead_letter_schema
from tests.support.e2e import day_metrics, eventually, produce, read_topic, worker_env, workers
from tests.support.metrics import scrape, total
from tests.support.odd_records import view
from tests.support.older_redis import OlderRedis
from tests.support.raw_batches import send_raw, unreadable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FAULTS = ("bad_crc", "garbled_gzip")


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_unreadable_batches_are_dead_lettered_and_skipped(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    shop = "unread"
    (w,) = workers(worker_env(broker.bootstrap, redis_url, created_topics, engine), tmp_path, 1)
    good = 0

    async def some_views(n: int) -> None:
        nonlocal good
        items = [("view", shop.encode(), view(shop, good + i, at)) for i in range(n)]
        await produce(broker.bootstrap, created_topics, items, partition=0)
        good += n

    try:
        w.start().wait_ready()
        await some_views(300)
        for fault in FAULTS:
            bad = unreadable(fault, [view(shop, 10_000 + i, at) for i in range(40)], b"unread")
            await send_raw(broker.bootstrap, created_topics.views, 0, bad)
            await some_views(200)
        metrics = await eventually(
            lambda: day_metrics(w.url, shop, at.date(), at.date()),
            lambda m: m.get("banner_views") == good,
            60,
        )
        assert metrics.get("banner_views") == good, f"{metrics}\n{w.tail()}"
        letters = await eventually(
            lambda: read_topic(broker.bootstrap, created_topics.dead_letters),
            lambda rs: len(rs) >= len(FAULTS),
            30,
        )
        _, text = http_get(f"{w.url}/metrics")
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
    docs = [orjson.loads(r.value) for r in letters]
    schema = dead_letter_schema()
    assert all(not list(schema.iter_errors(d)) for d in docs), docs
    assert [d["reason"] for d in docs] == ["unreadable_batch"] * len(FAULTS)
    spans = sorted((d["source"]["offset"], d["source"]["last_offset"]) for d in docs)
    assert spans == [(300, 339), (540, 579)], spans
    assert f'upsell_unreadable_batches_total{{topic="{created_topics.views}"}} 2.0' in text.decode()


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_a_rewound_range_with_an_unreadable_batch_is_read_again_past_it(
    engine: str, broker: EmbeddedBroker, created_topics: Topics, tmp_path: Path
) -> None:
    """Redis goes back to before an unreadable batch the worker had skipped: reading the range
    again (the Faust engine reads it beside Faust, stream/engines/faust/repair.py) meets the
    batch again, dead-letters it again and counts everything around it once."""
    at = datetime.now(UTC) - timedelta(hours=1)
    shop = "rewound"
    server = OlderRedis(tmp_path).start()
    (w,) = workers(worker_env(broker.bootstrap, server.url, created_topics, engine), tmp_path, 1)

    async def views(start: int, n: int) -> None:
        items = [("view", shop.encode(), view(shop, start + i, at)) for i in range(n)]
        await produce(broker.bootstrap, created_topics, items, partition=0)

    async def counted(n: int) -> dict[str, object]:
        return await eventually(
            lambda: day_metrics(w.url, shop, at.date(), at.date()),
            lambda m: m.get("banner_views") == n,
            60,
        )

    try:
        w.start().wait_ready()
        await views(0, 300)
        assert (await counted(300)).get("banner_views") == 300, w.tail()
        snapshot = server.snapshot()
        bad = unreadable("bad_crc", [view(shop, 10_000 + i, at) for i in range(40)], b"rewound")
        await send_raw(broker.bootstrap, created_topics.views, 0, bad)  # offsets 300..339
        await views(300, 200)  # offsets 340..539
        assert (await counted(500)).get("banner_views") == 500, w.tail()
        server.reload(snapshot)  # Redis holds 300 views again, the worker keeps running
        metrics = await counted(500)
        assert metrics.get("banner_views") == 500, f"{metrics}\n{w.tail()}"
        letters = await eventually(
            lambda: read_topic(broker.bootstrap, created_topics.dead_letters),
            lambda rs: len(rs) >= 2,
            30,
        )
        rewinds = total(scrape(w), "upsell_redis_rewinds_total")
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
        server.stop()
    assert rewinds >= 1, "the reload was not noticed: the test proves nothing"
    spans = {(d["source"]["offset"], d["source"]["last_offset"]) for d in map(_doc, letters)}
    assert spans == {(300, 339)}, spans


def _doc(record: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(record.value)
    return doc
