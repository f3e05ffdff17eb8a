"""Every compression codec producers use is read and counted, produced through aiokafka and
through librdkafka (confluent-kafka), by both engines: Kafka in, numbers out of HTTP. One worker
per engine serves both clients' tests (each client's shops are its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker
from tests.support.codec_producers import CLIENTS, CODECS, produce_compressed
from tests.support.e2e import day_metrics, eventually
from tests.support.engine_worker import EngineWorker

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
async def test_every_codec_is_counted(
    engine_worker: EngineWorker, client: str, broker: EmbeddedBroker
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    day = at.date()
    want = {f"{client}-{codec}": 300 + 41 * i for i, codec in enumerate(CODECS)}
    w, topics = engine_worker.worker, engine_worker.topics
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
    assert got == want, f"{engine_worker.engine}/{client}: views per codec {got}, sent {want}"
    assert w.alive() and w.starts == 1, w.tail()
