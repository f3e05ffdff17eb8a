"""Every compression codec producers use is read and counted, produced through aiokafka and
through librdkafka (confluent-kafka), by both engines: Kafka in, numbers out of HTTP. One worker
per engine serves both clients' tests (each client's shops are its own)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.conftest import clean_redis
from tests.integration.codec_producers import CLIENTS, CODECS, produce_compressed
from tests.integration.e2e import day_metrics, eventually, worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def views(shop: str, n: int, at: datetime) -> list[bytes]:
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        orjson.dumps(
            {
                "event_id": f"{shop}-{i}",
                "shop_id": shop,
                "occurred_at": stamp,
                "group_id": "g",
                "variation_id": "ab"[i % 2],
            }
        )
        for i in range(n)
    ]


@dataclass
class Counting:
    engine: str
    topics: Topics
    worker: WorkerProcess


@pytest.fixture(scope="module", params=["batch", "faust"])
def counting(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    redis_server: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Counting]:
    engine: str = request.param
    redis_url = clean_redis(redis_server)
    topics = Topics(f"codecs-{engine}.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
    tmp = tmp_path_factory.mktemp(f"codecs-{engine}")
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, engine), tmp, 1)
    try:
        w.start().wait_ready()
        yield Counting(engine, topics, w)
    finally:
        w.stop()


@pytest.mark.parametrize("client", CLIENTS)
async def test_every_codec_is_counted(
    counting: Counting, client: str, broker: EmbeddedBroker
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    day = at.date()
    want = {f"{client}-{codec}": 300 + 41 * i for i, codec in enumerate(CODECS)}
    w, topics = counting.worker, counting.topics
    for codec in CODECS:
        shop = f"{client}-{codec}"
        records = [(topics.views, shop.encode(), v) for v in views(shop, want[shop], at)]
        await produce_compressed(client, broker.bootstrap, codec, records)

    async def counted() -> dict[str, int]:
        return {
            shop: (await day_metrics(w.url, shop, day, day)).get("banner_views", -1)
            for shop in want
        }

    got = await eventually(counted, lambda c: c == want, 60)
    assert got == want, f"{counting.engine}/{client}: views per codec {got}, sent {want}"
    assert w.alive() and w.starts == 1, w.tail()
