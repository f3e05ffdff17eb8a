"""Retention without TTLs: which days are expired, which keys belong to a day, and the sweep that
deletes them (over the in-memory store; tests/integration/test_store_parity.py runs the same
sweep on a real Redis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.models import ShopSettings
from stream.dates.clock import FixedClock
from stream.services.retention_sweep import RetentionSweep
from stream.state import keys
from stream.state.memory import MemoryStore
from stream.state.retention import is_expired, last_expired_day
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry

RETENTION = 30


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_a_day_is_kept_until_midnight_utc_after_retention_plus_two_days() -> None:
    # day D expires at 00:00 UTC of D + 30 + 2 = 2026-12-03 (the rule the TTLs had)
    assert last_expired_day(ts("2026-12-02T23:59:59+00:00"), RETENTION) == "2026-10-31"
    assert last_expired_day(ts("2026-12-03T00:00:00+00:00"), RETENTION) == "2026-11-01"
    assert not is_expired("2026-11-01", last_expired_day(ts("2026-12-02T23:59:59+00:00"), 30))
    assert is_expired("2026-11-01", last_expired_day(ts("2026-12-03T00:00:00+00:00"), 30))
    assert is_expired("2025-12-31", "2026-01-01")
    assert not is_expired("2026-01-02", "2026-01-01")


@pytest.mark.parametrize(
    ("name", "day"),
    [
        (keys.day("s1", "2026-11-24"), "2026-11-24"),
        (keys.groups("shop.a:b-c", "2026-11-24"), "2026-11-24"),
        (keys.variations("s1", "2026-01-02", "grp:with:colons"), "2026-01-02"),
        (keys.transitions("s1", "2026-01-02", "g1"), "2026-01-02"),
        (keys.upgraders("s1", "2025-12-31"), "2025-12-31"),
        (keys.ledger("s1"), None),
        (keys.seen("s1", "u", "evt-2026-11-24"), None),
        (keys.subscribers("s1"), None),
        (keys.progress("s1"), None),
        (keys.partition("upsell.banner-views", 3), None),
        (keys.SHOPS, None),
        (keys.SHOPS_SEEN_LEGACY, None),
        (keys.SHOPS_ACTIVE, None),
        (keys.SHOPS_INDEX, None),
        (keys.retention_sweep("2026-11-24"), None),
        ("us:{s1}:day:2026-11", None),
        ("us:{s1}:day:2026-11-24x", None),
        ("other:{s1}:day:2026-11-24", None),
    ],
)
def test_day_of_a_key_name(name: str, day: str | None) -> None:
    assert keys.day_of(name) == day


def populated(today: date, days: int) -> MemoryStore:
    """Counters of the last ``days`` days for two shops, plus the keys no sweep may touch."""
    store = MemoryStore()
    for shop in ("s1", "s2"):
        for back in range(days):
            d = (today - timedelta(days=back)).isoformat()
            store.hashes[keys.day(shop, d)]["v"] = 1
            store.hashes[keys.groups(shop, d)][keys.field("v", "g")] = 1
            store.hashes[keys.variations(shop, d, "g")][keys.field("v", "a")] = 1
            store.hashes[keys.transitions(shop, d, "g")]["u"] = 1
            store.hlls[keys.upgraders(shop, d)].add("sub-1")
        store.hashes[keys.progress(shop)]["le"] = 1
        store.zsets[keys.ledger(shop)]["{}"] = 1
        store.strings[keys.seen(shop, "u", "e1")] = "1"
    return store


def day_keys(store: MemoryStore) -> set[str]:
    return {k for k in [*store.hashes, *store.hlls] if keys.day_of(k) is not None}


def days_left(store: MemoryStore) -> set[str]:
    return {d for k in day_keys(store) if (d := keys.day_of(k)) is not None}


async def test_the_sweep_deletes_expired_days_once_per_cutoff_and_nothing_else() -> None:
    clock = FixedClock(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    store = populated(date(2026, 12, 3), days=40)  # 2026-10-25 .. 2026-12-03
    telemetry = Telemetry()
    sweep = RetentionSweep(store=store, telemetry=telemetry, clock=clock, retention_days=30)

    assert await sweep.sweep_once() == 2 * 5 * 8  # 2 shops x 5 keys x 2026-10-25 .. 11-01
    assert min(days_left(store)) == "2026-11-02"
    assert len(day_keys(store)) == 2 * 5 * 32
    assert keys.progress("s1") in store.hashes
    assert keys.ledger("s1") in store.zsets
    assert keys.seen("s1", "u", "e1") in store.strings
    assert telemetry.retention_deleted_keys._value.get() == 80
    marker = keys.retention_sweep("2026-11-01")
    assert store.strings[marker] == keys.SWEEP_DONE, "a finished sweep says so (bench waits on it)"

    assert await sweep.sweep_once() is None  # this cutoff is swept (by this or another worker)
    other = RetentionSweep(store=store, telemetry=Telemetry(), clock=clock, retention_days=30)
    assert await other.sweep_once() is None

    clock.advance(days=1)
    assert await other.sweep_once() == 2 * 5  # the next day: one more day per shop
    assert min(days_left(store)) == "2026-11-03"


class FlakyStore(MemoryStore):
    fail = True

    async def delete_days_through(self, last_day: str) -> int:
        if self.fail:
            raise StoreUnavailable("redis went away mid-sweep")
        return await super().delete_days_through(last_day)


async def test_a_sweep_cut_short_by_redis_is_redone() -> None:
    clock = FixedClock(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    store = FlakyStore()
    store.hashes[keys.day("s1", "2026-10-01")]["v"] = 1
    sweep = RetentionSweep(store=store, telemetry=Telemetry(), clock=clock, retention_days=30)
    with pytest.raises(StoreUnavailable):
        await sweep.sweep_once()
    store.fail = False
    assert await sweep.sweep_once() == 1  # the claim was released
    assert day_keys(store) == set()


async def test_the_sweep_trims_the_shop_list_to_the_retention() -> None:
    now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    today = int(now.timestamp()) // 86_400
    store = MemoryStore()
    await store.mark_shops_seen(["gone", "configured"], today - 33)  # before today - 30 - 2
    await store.mark_shops_seen(["edge"], today - 32)
    await store.mark_shops_seen(["recent"], today - 1)
    await store.write_shops({"configured": ShopSettings("configured", "UTC", "monday", "USD")})
    sweep = RetentionSweep(
        store=store, telemetry=Telemetry(), clock=FixedClock(now), retention_days=30
    )
    await sweep.sweep_once()
    assert set(store.seen_shops) == {"edge", "recent"}
    assert set(store.zsets[keys.SHOPS_INDEX]) == {"configured", "edge", "recent"}
