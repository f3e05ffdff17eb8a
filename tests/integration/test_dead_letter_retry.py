"""A dead letter the broker refuses for a while: the record ends dead-lettered after retries,
the partition waits for it (nothing after it is counted early, nothing skipped), the worker
never stops, and the totals come out exact. Both engines.

The refusal is made from outside: the worker reaches the broker through a Kafka protocol proxy
(tests/support/kafka_proxy.py) that answers every produce to the dead-letter topic with
TOPIC_AUTHORIZATION_FAILED (as when an ACL goes missing for a while) until the test lets them
through. Tansu cannot refuse one topic on its own: it accepts a produce even to a deleted topic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.devtools.embedded import EmbeddedBroker
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.e2e import (
    day_metrics,
    eventually,
    produce,
    read_topic,
    worker_env,
    workers,
)
from tests.support.kafka_proxy import SCRATCH_TOPIC, KafkaProxy
from tests.support.metrics import scrape, total
from tests.support.odd_records import view

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FAILURES = "upsell_dead_letter_send_failures_total"


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_a_dead_letter_refused_for_a_while_is_sent_after_retries(
    engine: str,
    proxied_broker: tuple[KafkaProxy, EmbeddedBroker],
    redis_url: str,
    topics: Topics,
    tmp_path: Path,
) -> None:
    proxy, _broker = proxied_broker
    await ensure_topics(proxy.bootstrap, topics, partitions=4)
    admin = AIOKafkaAdminClient(bootstrap_servers=proxy.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(SCRATCH_TOPIC, 4, 1)])
    finally:
        await admin.close()
    at = datetime.now(UTC) - timedelta(hours=1)
    shop = "dlq"
    (w,) = workers(worker_env(proxy.bootstrap, redis_url, topics, engine), tmp_path, 1)

    async def views(start: int, n: int) -> None:
        items = [("view", shop.encode(), view(shop, start + i, at)) for i in range(n)]
        await produce(proxy.bootstrap, topics, items, partition=0)

    async def counted(n: int) -> int:
        got = await eventually(
            lambda: day_metrics(w.url, shop, at.date(), at.date()),
            lambda m: m.get("banner_views") == n,
            60,
        )
        return int(got.get("banner_views", -1))

    async def failures() -> float:
        return total(scrape(w), FAILURES)

    try:
        w.start().wait_ready()
        await views(0, 200)
        assert await counted(200) == 200, w.tail()
        proxy.refuse(topics.dead_letters)
        await produce(proxy.bootstrap, topics, [("view", shop.encode(), b"not json")], 0)
        await views(200, 200)  # offsets 201..400, behind the poison record at 200
        failed = await eventually(failures, lambda n: n >= 3, 60)
        assert failed >= 3, f"the refused dead letter was not retried: {failed}\n{w.tail()}"
        held = await day_metrics(w.url, shop, at.date(), at.date())
        assert held.get("banner_views") == 200, f"the partition must wait: {held}"
        proxy.accept(topics.dead_letters)
        assert await counted(400) == 400, w.tail()
        letters = await eventually(
            lambda: read_topic(proxy.bootstrap, topics.dead_letters),
            lambda rs: len(rs) >= 1,
            30,
        )
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
    docs = [orjson.loads(r.value) for r in letters]
    assert {(d["source"]["partition"], d["source"]["offset"]) for d in docs} == {(0, 200)}, docs
    assert proxy.produce_refusals >= 3
