"""The shops topic read at start, through the embedded broker: every shop ends with its last
record's settings, a tombstone removes a shop's, and the writes are batched per fetch."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
import pytest

from schemas.models import ShopSettings
from stream.devtools.embedded import EmbeddedBroker
from stream.services.settings_bootstrap import bootstrap_settings
from stream.settings import Topics
from stream.state.memory import MemoryStore
from stream.state.shop_directory import ShopDirectory
from tests.support.e2e import produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SHOPS = 3_000


def settings(shop: str, zone: str) -> bytes:
    doc = {"shop_id": shop, "timezone": zone, "week_start": "monday", "currency": "USD"}
    return orjson.dumps(doc)


class CountingStore(MemoryStore):
    """A MemoryStore that counts its settings writes (Redis round trips)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def write_shops(self, changes: Mapping[str, ShopSettings | None]) -> None:
        self.writes += 1
        await super().write_shops(changes)


async def test_last_record_wins_tombstones_remove_and_writes_are_batched(
    broker: EmbeddedBroker, created_topics: Topics
) -> None:
    first = [("shop", f"s{i}".encode(), settings(f"s{i}", "UTC")) for i in range(SHOPS)]
    later: list[tuple[str, bytes | None, bytes | None]] = [
        ("shop", b"s1", settings("s1", "Asia/Tokyo")),  # changed
        ("shop", b"s2", None),  # removed
        ("shop", b"s3", None),
        ("shop", b"s3", settings("s3", "Europe/Berlin")),  # removed, then set again
    ]
    await produce(broker.bootstrap, created_topics, [*first, *later])
    store = CountingStore()
    applied = await bootstrap_settings(
        broker.bootstrap, created_topics.shops, ShopDirectory(store), datetime.now(UTC)
    )
    assert applied == SHOPS + 2, applied
    assert len(store.shops) == SHOPS - 1, len(store.shops)
    assert store.shops["s1"].timezone == "Asia/Tokyo"
    assert "s2" not in store.shops
    assert store.shops["s3"].timezone == "Europe/Berlin"
    assert store.shops["s0"].timezone == "UTC"
    assert 1 <= store.writes <= SHOPS // 100, f"{store.writes} writes for {SHOPS} settings"
