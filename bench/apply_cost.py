"""``python -m bench.apply_cost``: where a batch's time goes, 50 shops against 10,000.

No broker and no worker process: the bench stream is split by partition in memory and fed to
the Ingestor batch by batch (2,500 events, what one partition of a 20,000-event fetch holds),
awaiting each apply, against a private Redis. It prints, per data set, events/s of this
sequential loop, the seconds spent in Python (decode, aggregate, payload) and inside the apply
script call, and the Redis commands the script issued per event. It explains the many-shops
row of ``make bench``: the script's work per event, not the worker's, grows with the shops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import data
from stream.devtools.embedded import EmbeddedRedis
from stream.devtools.offline_ingestor import offline_ingestor
from stream.devtools.records import Record
from stream.settings import Topics
from stream.state.batch import PartitionBatch
from stream.state.redis import RedisStore, connect

PARTITIONS = 8


class TimedStore(RedisStore):
    """Times the script calls (client round trip included)."""

    script_s = 0.0
    index_s = 0.0

    async def _index(self, batch: PartitionBatch) -> None:
        start = time.perf_counter()
        try:
            await super()._index(batch)
        finally:
            self.index_s += time.perf_counter() - start

    async def _call(self, payload: dict[str, Any], key_names: list[str]) -> Any:
        start = time.perf_counter()
        try:
            return await super()._call(payload, key_names)
        finally:
            self.script_s += time.perf_counter() - start


async def measure(
    redis_url: str, n_events: int, n_shops: int, per_batch: int, view_subscribers: int = 0
) -> dict[str, Any]:
    client = connect(redis_url, cluster=False)
    await client.flushall()
    await client.config_resetstat()
    store = TimedStore(client)
    topics = Topics("")
    now = datetime.now(UTC)
    ingestor = await offline_ingestor(store, topics, data.shops(n_shops), now, retention_days=400)
    parts: dict[tuple[str, int], list[Record]] = defaultdict(list)
    stream = data.events(n_events, n_shops=n_shops, now=now, view_subscribers=view_subscribers)
    for kind, key, value in stream:
        records = parts[(getattr(topics, kind), zlib.crc32(key) % PARTITIONS)]
        records.append(Record(len(records), key, value))
    for topic, partition in parts:
        await ingestor.assign(topic, partition)
    gc.collect()
    gc.freeze()  # as the worker does after start (stream/cli.py)
    await client.config_resetstat()
    start = time.perf_counter()
    for i in range(0, max(len(r) for r in parts.values()), per_batch):
        for (topic, partition), records in parts.items():
            if i < len(records):
                await ingestor.process(topic, partition, records[i : i + per_batch])
    total = time.perf_counter() - start
    gc.unfreeze()
    stats = await client.info("commandstats")
    await client.aclose()
    inside_s = stats.get("cmdstat_evalsha", {}).get("usec", 0) / 1e6
    index_inside_s = sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("sadd", "zadd"))
    commands = {
        name.removeprefix("cmdstat_"): s["calls"]
        for name, s in stats.items()
        if name != "cmdstat_evalsha" and s["calls"] >= n_events // 100
    }
    return {
        "shops": n_shops,
        "events_per_s": round(n_events / total),
        "python_s": round(total - store.script_s - store.index_s, 2),
        "index_s": round(store.index_s, 3),
        "index_inside_redis_s": round(index_inside_s / 1e6, 3),
        "script_s": round(store.script_s, 2),
        "inside_redis_s": round(inside_s, 2),
        "commands_per_event": {k: round(v / n_events, 2) for k, v in commands.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=2_500)
    parser.add_argument("--aof", action="store_true", help="Redis with AOF everysec, as deployed")
    parser.add_argument(
        "--view-subscribers",
        type=int,
        default=0,
        help="views carry one of this many subscriber ids: the experiments' exposures' cost",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upsell-apply-cost-") as tmp:
        redis = EmbeddedRedis(Path(tmp), appendonly=args.aof).start()
        try:
            for shops in (50, 10_000):
                r = asyncio.run(
                    measure(redis.url, args.events, shops, args.batch, args.view_subscribers)
                )
                us = 1e6 / args.events
                print(
                    f"{r['shops']:>6,} shops: {r['events_per_s']:>7,} events/s sequential; "
                    f"per event {r['python_s'] * us:.1f} us in Python, "
                    f"{r['script_s'] * us:.1f} us in the apply script call "
                    f"({r['inside_redis_s'] * us:.1f} us of it inside Redis), "
                    f"{r['index_s'] * us:.2f} us writing the retention day index "
                    f"({r['index_inside_redis_s'] * us:.2f} us inside Redis); Redis commands per "
                    f"event: {r['commands_per_event']}",
                    flush=True,
                )
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
