"""The in-memory store the unit tests use executes the apply documents exactly as the Lua script
does on a real Redis: the same batches through both leave the same data behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from stream.settings import Topics
from stream.state.memory import MemoryStore
from stream.state.redis import RedisStore, connect
from stream.state.store import CounterStore
from tests.event_factory import SHOPS, mixed_events
from tests.offline_ingestor import offline_ingestor
from tests.records import Record

pytestmark = [pytest.mark.integration]

TOPICS = Topics("parity.")
NOW = datetime.now(UTC)
KIND_TOPIC = {
    "view": TOPICS.views,
    "click": TOPICS.clicks,
    "upgrade": TOPICS.upgrades,
    "downgrade": TOPICS.downgrades,
}


async def feed(store: CounterStore) -> None:
    ingestor = await offline_ingestor(store, TOPICS, SHOPS.items(), NOW, retention_days=800)
    by_topic: dict[str, list[Record]] = {}
    for sent in mixed_events(6_000, seed=5, now=NOW):
        records = by_topic.setdefault(KIND_TOPIC[sent.kind], [])
        records.append(Record(len(records), sent.key, sent.value))
    for topic, records in by_topic.items():
        await ingestor.assign(topic, 0)
        for i in range(0, len(records), 700):  # several batches, some shops in each
            await ingestor.process(topic, 0, records[i : i + 700])


async def redis_hashes(client: Redis) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    async for raw in client.scan_iter(match="us:*", count=1000):
        if await client.type(raw) == b"hash":
            fields = await client.hgetall(raw)
            out[raw.decode()] = {f.decode(): int(v) for f, v in fields.items() if _integer(v)}
    return out


def _integer(raw: bytes) -> bool:
    return raw.lstrip(b"-").isdigit()


async def test_memory_store_and_lua_script_leave_the_same_data(redis_url: str) -> None:
    memory = MemoryStore()
    await feed(memory)
    client = connect(redis_url, cluster=False)
    try:
        await feed(RedisStore(client))
        got = await redis_hashes(client)
        want = {
            key: {f: int(v) for f, v in fields.items() if isinstance(v, int)}
            for key, fields in memory.hashes.items()
        }
        want = {k: v for k, v in want.items() if v}
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
