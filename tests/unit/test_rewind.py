"""Redis that went back in time, over the in-memory store: noticed at the next apply or by the
idle check, repaired by reading again from what the store holds; counters near their limit;
bounded per-partition memory."""

from __future__ import annotations

import copy

import pytest

from stream.ingest.types import MAX_SHOP_OFFSETS, OVERFLOW, PartitionRewound
from stream.state import keys
from stream.state.memory import MemoryStore
from tests.support.memory_ingest import TOPICS, ListSink, make_ingestor, records, upgrade, view

DAY = "2026-11-24"
T = TOPICS.views


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def restore(store: MemoryStore, older: MemoryStore, only_shop: str | None = None) -> None:
    """``store`` comes back as ``older`` was: all of it, or one shop's keys (a Cluster node)."""
    tables = ("hashes", "strings", "hlls", "zsets")
    for table in tables:
        now, then = getattr(store, table), getattr(older, table)
        for name in list(now):
            if only_shop is None or f"{{{only_shop}}}" in name:
                if name in then:
                    now[name] = copy.deepcopy(then[name])
                else:
                    del now[name]


async def test_a_rewound_checkpoint_is_read_again_and_totals_come_back(
    store: MemoryStore,
) -> None:
    ing = make_ingestor(store)
    await ing.assign(T, 0)
    recs = records([("s1", view(i)) for i in range(30)])
    await ing.process(T, 0, recs[:10])
    older = copy.deepcopy(store)
    await ing.process(T, 0, recs[10:20])
    restore(store, older)  # Redis lost batch 2
    with pytest.raises(PartitionRewound) as raised:
        await ing.process(T, 0, recs[20:])
    assert raised.value.resume_offset == 10
    assert store.hashes[keys.day("s1", DAY)] == {"v": 10}, "the refused batch wrote nothing"
    await ing.process(T, 0, recs[10:])
    assert store.hashes[keys.day("s1", DAY)] == {"v": 30}
    assert ing._telemetry.redis_rewinds.labels(T)._value.get() == 1


async def test_an_idle_partition_is_checked_without_an_apply(store: MemoryStore) -> None:
    ing = make_ingestor(store)
    await ing.assign(T, 0)
    older = copy.deepcopy(store)
    await ing.process(T, 0, records([("s1", view(i)) for i in range(10)]))
    assert await ing.verify(T, 0) is None
    restore(store, older)
    assert await ing.verify(T, 0) == 0
    assert await ing.verify(T, 0) is None, "repaired: the worker now expects what Redis holds"


async def test_one_shop_gone_back_alone_is_read_again_from_its_progress(
    store: MemoryStore,
) -> None:
    """A Cluster node lost a shop's writes; the checkpoint (another node) kept its own."""
    ing = make_ingestor(store)
    await ing.assign(T, 0)
    recs = records([(s, view(i, shop=s)) for i in range(30) for s in ("s1", "s2")])
    await ing.process(T, 0, recs[:20])
    older = copy.deepcopy(store)
    await ing.process(T, 0, recs[20:40])
    restore(store, older, only_shop="s2")
    with pytest.raises(PartitionRewound) as raised:
        await ing.process(T, 0, recs[40:])
    assert raised.value.resume_offset == 20  # s2's stored progress was 19
    await ing.process(T, 0, recs[20:])
    assert store.hashes[keys.day("s1", DAY)] == {"v": 30}
    assert store.hashes[keys.day("s2", DAY)] == {"v": 30}


async def test_records_kafka_no_longer_has_are_reported_lost(store: MemoryStore) -> None:
    ing = make_ingestor(store)
    assert ing.resume_in_log(T, 3, 100, 40) == 100
    assert ing.resume_in_log(T, 3, 100, 160) == 160
    assert ing.records_lost == {f"{T}[3]": 60}
    assert ing._telemetry.records_lost.labels(T)._value.get() == 60


async def test_an_upgrade_that_would_overflow_is_dead_lettered_whole(store: MemoryStore) -> None:
    sink = ListSink()
    ing = make_ingestor(store, sink)
    await ing.assign(TOPICS.upgrades, 0)
    store.hashes[keys.day("s1", DAY)]["r:USD"] = 2**63 - 1 - 2 * 1500
    recs = records([("s1", upgrade(f"u{i}")) for i in range(4)])
    out = await ing.process(TOPICS.upgrades, 0, recs)
    assert out.counted == 2 and out.dead_letters == 2
    assert [x.reason for x in sink.letters] == [OVERFLOW, OVERFLOW]
    assert [x.offset for x in sink.letters] == [2, 3]
    assert store.hashes[keys.day("s1", DAY)]["r:USD"] == 2**63 - 1
    assert store.hashes[keys.day("s1", DAY)]["u"] == 2
    assert store.hashes[keys.partition(TOPICS.upgrades, 0)]["offset"] == 3


async def test_per_shop_offsets_stay_bounded(store: MemoryStore) -> None:
    ing = make_ingestor(store)
    await ing.assign(T, 0)
    n = MAX_SHOP_OFFSETS + 5_000
    recs = records([(f"s{i}", view(i, shop=f"s{i}")) for i in range(n)])
    for i in range(0, n, 5_000):
        await ing.process(T, 0, recs[i : i + 5_000])
    assert len(ing.partitions[(T, 0)].shop_offsets) <= MAX_SHOP_OFFSETS
