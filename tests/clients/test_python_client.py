"""clients/python against the real collector (a process), the embedded broker and a real Redis:
its events land in the topics with their ids, rejections come back with their reasons, a
retried batch is not produced twice, and a refused key raises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from upsell_client import Collector, Plan, Refused

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.collector_keys import make_key
from tests.support.e2e import collector_env, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHOP = "shop-pyclient"


@pytest.fixture(scope="module")
def collector(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, Topics, str, str]]:
    tmp = tmp_path_factory.mktemp("pyclient")
    topics = Topics("pyc.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=2))
    proc = WorkerProcess(
        collector_env(broker.bootstrap, redis_server.url, topics),
        tmp,
        "collector",
        role="collector",
    )
    try:
        proc.start().wait_ready()
        yield proc, topics, broker.bootstrap, make_key(redis_server.url, SHOP, "secret")
    finally:
        proc.stop()


def _topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in asyncio.run(read_topic(bootstrap, topic))]


def test_the_client_delivers_upgrades_and_views_with_their_ids(
    collector: tuple[WorkerProcess, Topics, str, str],
) -> None:
    proc, topics, bootstrap, key = collector
    with Collector(proc.url, key=key, shop=SHOP, batch_size=3) as client:
        ids = [
            client.upgrade(
                subscriber=f"sub-{i}",
                order=f"order-{i}",
                revenue_minor=1200 + i,
                currency="EUR",
                from_plan=Plan("monthly", 1500),
                to_plan=Plan("annual", 1250),
                group="annual-upgrade",
                variation="save-20",
            )
            for i in range(4)
        ]
        view_id = client.view(group="annual-upgrade", variation="save-20")
    upgrades = {e["event_id"]: e for e in _topic(bootstrap, topics.upgrades)}
    assert set(ids) <= set(upgrades), upgrades.keys()
    assert upgrades[ids[3]]["revenue_minor"] == 1203 and upgrades[ids[3]]["shop_id"] == SHOP
    assert view_id in {e["event_id"] for e in _topic(bootstrap, topics.views)}


def test_rejections_come_back_and_a_resent_batch_counts_once(
    collector: tuple[WorkerProcess, Topics, str, str],
) -> None:
    proc, topics, bootstrap, key = collector
    client = Collector(proc.url, key=key, shop=SHOP)
    good = client.view(group="g", variation="a")
    client.upgrade(
        subscriber="s",
        order="o",
        revenue_minor=1,
        currency="euro",
        from_plan=Plan("m", 1),
        to_plan=Plan("a", 2),
    )
    batch = list(client._queue)
    [rejected] = client.flush()
    assert rejected.reason == "bad_value:currency", rejected
    client._queue.extend(batch)  # the same events again, as after a lost answer
    assert [r.reason for r in client.flush()] == ["bad_value:currency"]
    views = [e["event_id"] for e in _topic(bootstrap, topics.views)]
    assert views.count(good) == 1


def test_a_revoked_or_unknown_key_raises(
    collector: tuple[WorkerProcess, Topics, str, str],
) -> None:
    proc, _, _, _ = collector
    client = Collector(proc.url, key="usk_nope", shop=SHOP)
    client.view(group="g", variation="a")
    with pytest.raises(Refused) as info:
        client.flush()
    assert info.value.status == 401
