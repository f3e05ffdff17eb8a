"""The in-memory store the unit tests use executes the apply documents exactly as the Lua script
does on a real Redis: the same batches through both leave the same data behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.devtools.offline_ingestor import offline_ingestor
from stream.devtools.records import Record
from stream.settings import Topics
from stream.state import keys
from stream.state.batch import MoneyEntry, PartitionBatch
from stream.state.memory import MemoryStore
from stream.state.redis import AnyRedis, RedisStore, connect
from stream.state.store import CounterStore
from tests.support.event_factory import SHOPS, mixed_events
from tests.support.state_snapshot import text

pytestmark = [pytest.mark.integration]

TOPICS = Topics("parity.")
NOW = datetime.now(UTC)
DAY = NOW.date().isoformat()  # the shop-local day the hand-built batches count on
KIND_TOPIC = {
    "view": TOPICS.views,
    "click": TOPICS.clicks,
    "upgrade": TOPICS.upgrades,
    "downgrade": TOPICS.downgrades,
}


async def feed(store: CounterStore, money_first: bool = False) -> None:
    """The same events into ``store``, topic by topic: views first, or (``money_first``)
    upgrades and downgrades before the views that expose their subscribers."""
    ingestor = await offline_ingestor(store, TOPICS, SHOPS.items(), NOW, retention_days=800)
    by_topic: dict[str, list[Record]] = {}
    for sent in mixed_events(6_000, seed=5, now=NOW):
        records = by_topic.setdefault(KIND_TOPIC[sent.kind], [])
        records.append(Record(len(records), sent.key, sent.value))
    order = sorted(by_topic, key=lambda t: (t == TOPICS.views) == money_first)
    for topic in order:
        records = by_topic[topic]
        await ingestor.assign(topic, 0)
        for i in range(0, len(records), 700):  # several batches, some shops in each
            await ingestor.process(topic, 0, records[i : i + 700])


async def redis_hashes(client: AnyRedis) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    async for raw in client.scan_iter(match="us:*", count=1000):
        if await client.type(raw) == b"hash":
            fields = await client.hgetall(raw)
            out[raw.decode()] = {text(f): int(v) for f, v in fields.items() if _integer(v)}
    return out


def _integer(raw: bytes | str) -> bool:
    return text(raw).lstrip("-").isdigit()


def memory_hashes(memory: MemoryStore) -> dict[str, dict[str, int]]:
    """The memory store's hashes as redis_hashes reads Redis's: integer fields, of the counters
    and of the subscribers' experiment hashes."""
    out = {
        key: {f: int(v) for f, v in fields.items() if _integer(str(v))}
        for key, fields in [*memory.hashes.items(), *memory.exposed.items()]
    }
    return {k: v for k, v in out.items() if v}


# one call per batch, and a call per 3 shops (a batch's calls each exact on their own)
# upgrades before the views that expose their subscribers, with calls of 3 shops
@pytest.mark.parametrize("shops_per_call", [2_000, 3])
async def test_memory_store_and_lua_script_leave_the_same_data(
    redis_url: str, shops_per_call: int
) -> None:
    memory = MemoryStore()
    money_first = shops_per_call == 3
    await feed(memory, money_first)
    client = connect(redis_url, cluster=False)
    try:
        await feed(RedisStore(client, shops_per_call=shops_per_call), money_first)
        got = await redis_hashes(client)
        want = memory_hashes(memory)
        assert any(":xp:" in k for k in want) and any(":xs:" in k for k in want)
        got = {k: v for k, v in got.items() if v}
        assert set(got) == set(want)
        for key in want:
            assert got[key] == want[key], key
        assert len(want) > 50
        for key, members in memory.zsets.items():
            assert await client.zcard(key) == len(members)
        for key, subscribers in memory.hlls.items():
            assert await client.pfcount(key) == len(subscribers)
    finally:
        await client.aclose()


async def test_counters_have_no_ttl_and_the_sweep_deletes_the_same_keys(redis_url: str) -> None:
    memory = MemoryStore()
    await feed(memory)
    client = connect(redis_url, cluster=False)
    try:
        redis = RedisStore(client)
        await feed(redis)
        days = sorted({d for k in memory.hashes if (d := keys.day_of(k)) is not None})
        assert len(days) > 3
        for key in [k for k in memory.hashes if keys.day_of(k) is not None][:50]:
            assert await client.ttl(key) == -1, key  # the retention sweep deletes them
        for shop in SHOPS:
            assert 0 < await client.ttl(keys.progress(shop)) <= 800 * 86_400
        cutoff = days[len(days) // 2]
        deleted = await redis.delete_days_through(cutoff)
        await memory.delete_days_through(cutoff)
        got = await redis_hashes(client)
        assert deleted > 0
        left_days = {keys.day_of(k) for k in got} - {None}
        assert left_days and all(str(d) > cutoff for d in left_days)
        assert {k: v for k, v in got.items() if v} == memory_hashes(memory)
        assert set(memory.zsets) and all([await client.exists(k) for k in memory.zsets])
        assert {k for k in memory.hlls} == {
            k.decode() async for k in client.scan_iter(match="us:{*}:hll:*")
        }
    finally:
        await client.aclose()


async def test_the_sweep_reads_the_day_index_and_scans_only_once(redis_url: str) -> None:
    """After the first sweep (a SCAN, for keys older than the index), a sweep issues no SCAN:
    it deletes the expired days' keys by name from the index, the same keys as the memory
    store's sweep, and leaves no index entry of a deleted day."""
    memory = MemoryStore()
    await feed(memory)
    client = connect(redis_url, cluster=False)
    try:
        await client.flushall()
        redis = RedisStore(client)
        long_ago = (NOW - timedelta(days=3000)).date().isoformat()  # before any fed day
        legacy = keys.variations("legacy-shop", long_ago, "g")
        await client.hset(legacy, "v\x1fa", 1)  # written before the index existed
        assert await redis.delete_days_through(long_ago) == 1
        assert not await client.exists(legacy), "the first sweep scans for unindexed keys"
        await feed(redis)
        days = sorted({d for k in memory.hashes if (d := keys.day_of(k)) is not None})
        cutoff = days[len(days) // 2]
        await client.config_resetstat()
        deleted = await redis.delete_days_through(cutoff)
        stats = await client.info("commandstats")
        assert "cmdstat_scan" not in stats, f"a later sweep scanned: {stats.get('cmdstat_scan')}"
        assert deleted == await memory.delete_days_through(cutoff) > 0
        got = await redis_hashes(client)
        assert {k: v for k, v in got.items() if v} == memory_hashes(memory)
        indexed = [text(d) for d in await client.zrangebylex(keys.DAYS, "-", "+")]
        assert indexed and all(d > cutoff for d in indexed), indexed
        assert not [d for d in days if d <= cutoff and await client.exists(keys.day_shops(d))]
    finally:
        await client.aclose()


def _batch(
    generation: int, first: int, last: int, expected: int, shop_expected: int = -1
) -> PartitionBatch:
    batch = PartitionBatch("t", 0, generation, last, 800, expected_checkpoint=expected)
    section = batch.section("s", first)
    section.last_offset, section.expected_offset = last, shop_expected
    section.cells[("v", DAY, "g", "a")] = last - first + 1
    return batch


def _money(batch: PartitionBatch, event: str, fields: dict[str, int]) -> None:
    batch.sections["s"].money.append(
        MoneyEntry(keys.seen("s", "u", event), {keys.day("s", DAY): fields})
    )


@pytest.mark.parametrize(
    ("seed", "deltas", "refused"),
    [
        (2**63 - 1 - 5, [3, 2, 1], ["e2"]),  # exactly 2^63 - 1 fits, one more does not
        (-(2**63) + 5, [-3, -2, -1], ["e2"]),
        (-7, [10, -20, 2**53 - 1], []),
        (2**63 - 1, [0, -(2**53 - 1), 2**53], ["e2"]),  # deltas are exact to 2^53
        (10**18, [10**12] * 3, []),
    ],
)
async def test_overflow_is_refused_whole_and_alike(
    redis_url: str, seed: int, deltas: list[int], refused: list[str]
) -> None:
    client = connect(redis_url, cluster=False)
    memory, redis = MemoryStore(), RedisStore(client)
    day = keys.day("s", DAY)
    try:
        memory.hashes[day]["r:USD"] = seed
        await client.hset(day, "r:USD", seed)
        for store in (memory, redis):
            gen = (await store.claim("t", 0)).generation
            batch = _batch(gen, 0, 9, -1)
            for i, delta in enumerate(deltas):
                _money(batch, f"e{i}", {"r:USD": delta, "u": 1})
            result = await store.apply(batch)
            assert result.status == ("overflow" if refused else "ok"), result
            assert [k.rsplit(":", 1)[1] for k in result.overflow] == refused
        assert int(await client.hget(day, "r:USD") or 0) == memory.hashes[day]["r:USD"]
        if refused:
            assert memory.hashes[day]["r:USD"] == seed, "an overflowing batch wrote something"
            assert await client.hget(day, "u") is None
    finally:
        await client.aclose()


async def test_a_store_older_than_the_worker_answers_rewound_alike(redis_url: str) -> None:
    client = connect(redis_url, cluster=False)
    try:
        for store in (MemoryStore(), RedisStore(client)):
            gen = (await store.claim("t", 0)).generation
            assert (await store.apply(_batch(gen, 0, 9, -1))).status == "ok"
            assert await store.checkpoint("t", 0) == 9
            # the worker had written up to 19: the checkpoint went back
            result = await store.apply(_batch(gen, 20, 29, 19))
            assert (result.status, result.rewound) == ("rewound", {})
            # the shop's own progress went back (a Cluster node), the checkpoint did not
            result = await store.apply(_batch(gen, 10, 19, 9, shop_expected=15))
            assert (result.status, result.rewound) == ("rewound", {"s": 9})
            # nothing of the refused batches was written
            assert await store.checkpoint("t", 0) == 9
            assert (await store.apply(_batch(gen, 10, 19, 9, shop_expected=9))).status == "ok"
            assert (await store.claim("t", 0, above=gen + 5)).generation == gen + 6
    finally:
        await client.aclose()
