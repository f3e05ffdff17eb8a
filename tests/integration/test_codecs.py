"""Every compression codec producers use is read and counted, produced through aiokafka and
through librdkafka (confluent-kafka), by both engines: Kafka in, numbers out of HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
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


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_every_codec_is_counted(
    engine: str,
    client: str,
    broker: EmbeddedBroker,
    redis_url: str,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    day = at.date()
    want = {f"codec-{codec}": 300 + 41 * i for i, codec in enumerate(CODECS)}
    (w,) = workers(worker_env(broker.bootstrap, redis_url, created_topics, engine), tmp_path, 1)
    try:
        w.start().wait_ready()
        for codec in CODECS:
            shop = f"codec-{codec}"
            records = [
                (created_topics.views, shop.encode(), v) for v in views(shop, want[shop], at)
            ]
            await produce_compressed(client, broker.bootstrap, codec, records)

        async def counted() -> dict[str, int]:
            return {
                shop: (await day_metrics(w.url, shop, day, day)).get("banner_views", -1)
                for shop in want
            }

        got = await eventually(counted, lambda c: c == want, 60)
        assert got == want, f"{engine}/{client}: views per codec {got}, sent {want}"
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
