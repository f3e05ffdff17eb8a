"""An Ingestor over the in-memory store, and the records the unit tests hand it: views and
upgrades as the producers write them, dead letters kept in a list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from consumers import counting_routes
from schemas.dead_letter import DeadLetter
from stream.dates.clock import Clock
from stream.devtools.records import Record
from stream.ingest.ingestor import Ingestor
from stream.settings import Topics
from stream.state.memory import MemoryStore
from stream.state.shop_directory import ShopDirectory
from stream.telemetry import Telemetry

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOPICS = Topics("t.")


class ListSink:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)


def view(
    i: int,
    shop: str = "s1",
    at: str = "2026-11-24T10:00:00Z",
    group: str = "g1",
    variation: str = "a",
) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"v{i}",
            "shop_id": shop,
            "occurred_at": at,
            "group_id": group,
            "variation_id": variation,
        }
    )


def upgrade(
    event_id: str, shop: str = "s1", at: str = "2026-11-24T10:00:00Z", group: str | None = "g1"
) -> bytes:
    doc: dict[str, object] = {
        "event_id": event_id,
        "shop_id": shop,
        "occurred_at": at,
        "subscriber_id": "sub-" + event_id,
        "order_id": "o-" + event_id,
        "from": {"product_ids": ["p1"], "selling_plan_id": "basic", "mrr_minor": 1000},
        "to": {"product_ids": ["p2"], "selling_plan_id": "pro", "mrr_minor": 2500},
        "revenue_minor": 1500,
        "currency": "USD",
    }
    if group is not None:
        doc["group_id"], doc["variation_id"] = group, "a"
    return orjson.dumps(doc)


def records(values: Sequence[tuple[str, bytes | None]], start: int = 0) -> list[Record]:
    return [Record(start + i, k.encode(), v) for i, (k, v) in enumerate(values)]


def make_ingestor(
    store: MemoryStore,
    sink: ListSink | None = None,
    directory: ShopDirectory | None = None,
    clock: Clock = lambda: NOW,
) -> Ingestor:
    return Ingestor(
        routes=counting_routes(TOPICS),
        store=store,
        shops=directory if directory is not None else ShopDirectory(store),
        dead_letters=sink or ListSink(),
        telemetry=Telemetry(),
        clock=clock,
        retention_days=800,
    )
