"""An Ingestor fed by hand, with no broker: records are passed to ``process`` directly and dead
letters are dropped. Used by the store parity test and ``bench.apply_cost``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from consumers import counting_routes
from schemas.dead_letter import DeadLetter
from schemas.models import ShopSettings
from stream.ingest.ingestor import Ingestor
from stream.settings import Topics
from stream.state.shop_directory import ShopDirectory
from stream.state.store import CounterStore
from stream.telemetry import Telemetry


class DiscardLetters:
    async def send(self, letters: Sequence[DeadLetter]) -> None:
        return None


async def offline_ingestor(
    store: CounterStore,
    topics: Topics,
    shops: Iterable[tuple[str, str]],
    now: datetime,
    retention_days: int,
) -> Ingestor:
    """An Ingestor over ``store`` that knows ``shops`` (shop id, timezone) and a fixed clock."""
    directory = ShopDirectory(store)  # type: ignore[arg-type]
    await directory.write({shop: ShopSettings(shop, tz, "monday", "USD") for shop, tz in shops})
    return Ingestor(
        routes=counting_routes(topics),
        store=store,
        shops=directory,
        dead_letters=DiscardLetters(),
        telemetry=Telemetry(),
        clock=lambda: now,
        retention_days=retention_days,
    )
