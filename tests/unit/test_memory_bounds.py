"""Per-shop memory of a worker stays bounded, and a shop evicted from a cache is read again from
the store, never assumed: counts land on the shop-local day its settings say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers import counting_routes
from schemas.decoder import Decoder
from schemas.models import ShopSettings
from stream.dates.days import local_date
from stream.devtools.records import Record
from stream.ingest.ingestor import Ingestor
from stream.settings import Settings, SettingsError
from stream.state import keys
from stream.state.day_index import DayIndex
from stream.state.memory import MemoryStore
from stream.state.shop_directory import ShopDirectory
from stream.telemetry import Telemetry
from tests.support.memory_ingest import TOPICS, ListSink, view

# 23:30 UTC: local dates differ from the UTC date in both zones (UTC+14 and UTC-12 are 26 h apart,
# so at any instant at least one of them has another date than UTC; here both do).
AT = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")
BOUND = 100


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ingestor(store: MemoryStore, directory: ShopDirectory) -> Ingestor:
    return Ingestor(
        routes=counting_routes(TOPICS),
        store=store,
        shops=directory,
        dead_letters=ListSink(),
        telemetry=Telemetry(),
        clock=lambda: AT,
        retention_days=800,
        decoder=Decoder(max_shops=BOUND),
        shop_cache_entries=BOUND,
        shop_offsets_per_partition=BOUND,
    )


async def test_caches_stay_at_their_bound_and_evicted_settings_are_read_again() -> None:
    store = MemoryStore()
    ticks = Ticks()
    directory = ShopDirectory(store, max_entries=BOUND, monotonic=ticks)
    shops = [f"m{i}" for i in range(2_000)]
    zone_of = {shop: ZONES[i % 2] for i, shop in enumerate(shops) if i % 4 < 2}  # half have some
    for shop, zone in zone_of.items():
        await store.write_shops({shop: ShopSettings(shop, zone, "monday", "USD")})
    ing = ingestor(store, directory)
    await ing.assign(TOPICS.views, 0)
    at = AT.isoformat().replace("+00:00", "Z")
    # every shop 3 times, 2,000 shops apart: each is evicted between its views; every 7th
    # record has no key, so its shop is known only once decoded
    values = [view(n, shop=shops[n % len(shops)], at=at) for n in range(3 * len(shops))]
    recs = [
        Record(n, None if n % 7 == 0 else shops[n % len(shops)].encode(), v)
        for n, v in enumerate(values)
    ]
    sizes = ing.cache_sizes()
    for first in range(0, len(recs), 250):
        ticks.now += 0.3  # entries age: some are read again for their age, not only evicted
        out = await ing.process(TOPICS.views, 0, recs[first : first + 250])
        assert out.counted == 250, out
        await directory.refresh()
        assert len(directory) <= BOUND
        assert {name: size() for name, size in sizes.items() if size() > BOUND} == {}
    for shop in shops:
        day = local_date(zone_of.get(shop, "UTC"), AT).isoformat()
        assert store.hashes[keys.day(shop, day)] == {"v": 3}, shop


async def test_a_settings_change_counts_once_the_cached_entry_is_older_than_its_age() -> None:
    store = MemoryStore()
    ticks = Ticks()
    directory = ShopDirectory(store, max_entries=BOUND, max_age_s=1.0, monotonic=ticks)
    await store.write_shops({"tz": ShopSettings("tz", ZONES[0], "monday", "USD")})
    assert await directory.timezones(["tz", "none"]) == {"tz": ZONES[0], "none": "UTC"}
    await store.write_shops(
        {"tz": ShopSettings("tz", ZONES[1], "monday", "USD")}
    )  # another worker wrote
    assert (await directory.timezones(["tz"]))["tz"] == ZONES[0]  # within its age
    ticks.now = 1.5
    assert (await directory.timezones(["tz"]))["tz"] == ZONES[1]


def test_day_index_memo_is_bounded() -> None:
    index = DayIndex(BOUND)
    today = datetime.now(UTC).date().isoformat()
    for i in range(1_000):
        index.written({today: [f"s{i}"]})
        assert len(index) <= BOUND
    index.written({today: [f"x{i}" for i in range(BOUND + 1)]})  # more than it may hold
    assert len(index) <= BOUND


def test_cache_sizes_are_settings() -> None:
    s = Settings.from_env(
        {
            "UPSELL_AUTH": "off",
            "UPSELL_SHOP_CACHE_ENTRIES": "5000",
            "UPSELL_SHOP_OFFSETS_PER_PARTITION": "700",
        }
    )
    assert (s.shop_cache_entries, s.shop_offsets_per_partition) == (5000, 700)
    assert Settings.from_env({"UPSELL_AUTH": "off"}).shop_cache_entries == 100_000
    with pytest.raises(SettingsError, match="UPSELL_SHOP_CACHE_ENTRIES"):
        Settings.from_env({"UPSELL_AUTH": "off", "UPSELL_SHOP_CACHE_ENTRIES": "10"})
