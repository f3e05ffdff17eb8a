"""``python -m bench.sweep_cost``: the retention sweep by the per-day index against a full SCAN.

No broker: the bench stream (10,000 shops over 30 days by default) is applied through an offline
Ingestor into a private Redis. Then the oldest days through the second are deleted through the
day index (the first is a partial day at the window's edge), and the third day by scanning the
whole keyspace (the sweep before the index, and the first sweep
of a deployment): each deletes one day's keys, so the two times compare the same work.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from bench import data
from stream.devtools.embedded import EmbeddedRedis
from stream.devtools.offline_ingestor import offline_ingestor
from stream.devtools.records import Record
from stream.settings import Topics
from stream.state import keys
from stream.state.day_index import expired_days, scan_and_delete
from stream.state.redis import RedisStore, connect


async def measure(redis_url: str, n_events: int, n_shops: int) -> str:
    client = connect(redis_url, cluster=False)
    await client.flushall()
    store = RedisStore(client)
    topics = Topics("")
    now = datetime.now(UTC)
    ingestor = await offline_ingestor(store, topics, data.shops(n_shops), now, retention_days=400)
    parts: dict[tuple[str, int], list[Record]] = {}
    for kind, key, value in data.events(n_events, n_shops=n_shops, now=now):
        records = parts.setdefault((getattr(topics, kind), zlib.crc32(key) % 8), [])
        records.append(Record(len(records), key, value))
    for (topic, partition), records in parts.items():
        await ingestor.assign(topic, partition)
        for i in range(0, len(records), 2_500):
            await ingestor.process(topic, partition, records[i : i + 2_500])
    await client.set(keys.RETENTION_SCANNED, "bench")  # as after a deployment's first sweep
    total = await client.dbsize()
    _edge, first, second = (await expired_days(client, "9999-12-31"))[:3]  # 2 whole days
    start = time.perf_counter()
    by_index = await store.delete_days_through(first)
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    by_scan = await scan_and_delete(client, second, 1_000)
    scan_s = time.perf_counter() - start
    await client.aclose()
    return (
        f"{n_shops:,} shops, {total:,} keys: a day and a partial one by the index "
        f"{by_index:,} keys in {index_s * 1000:.0f} ms; one day by SCAN {by_scan:,} keys in "
        f"{scan_s * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--shops", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upsell-sweep-cost-") as tmp:
        redis = EmbeddedRedis(Path(tmp), appendonly=False).start()
        try:
            print(asyncio.run(measure(redis.url, args.events, args.shops)), flush=True)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
