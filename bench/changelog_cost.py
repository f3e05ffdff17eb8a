"""``python -m bench.changelog_cost``: what the state changelog costs per event, and how fast a
restore rebuilds Redis from it (README, "The state changelog"; docs/operations.md, "Redis lost").

Production's shape (bench/live_data.py: 10,000 shops, Zipf, today's events) through an offline
Ingestor in 2,500-event partition batches against a private Redis, twice: without the changelog,
then with it and a flusher sending to an embedded broker every 20,000 events (``--flush-events``),
in the same process (as in a worker). Per event: the worker's CPU (this process), Redis's
(``INFO cpu``) and the broker's (``/proc``), the second run minus the first. Then the changelog
topic is read: records and bytes sent, and the bytes compaction keeps (the latest record of
each key) per counter set. Last, Redis is emptied and rebuilt from the changelog: counter sets
per second, and the time for 10,000 shops x 800 days at this shape, extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis as sync_redis

from bench import live_data
from bench.measure import counter_sets, cpu_seconds, redis_cpu_seconds
from stream.changelog_metrics import ChangelogMetrics
from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.offline_ingestor import offline_ingestor
from stream.devtools.records import Record
from stream.kafka.reading import read_to_end
from stream.kafka.topics import ensure_topics
from stream.services.changelog_flusher import ChangelogFlusher
from stream.services.restore import restore
from stream.settings import Settings, Topics
from stream.state.changelog import ChangelogState
from stream.state.redis import RedisStore, connect

PARTITIONS = 8
SHOPS = 10_000
DAYS = 800
# a flush per 20,000 events counted: what a worker counting 40-100k events/s does with the
# default 500 ms period (a wall-clock period would flush more often on a slower machine)
FLUSH_EVENTS = 20_000


async def count(
    redis_url: str,
    broker: EmbeddedBroker | None,
    topics: Topics,
    n: int,
    batch: int,
    flush_events: int = FLUSH_EVENTS,
) -> dict[str, float]:
    """Count ``n`` live-shape events; with a ``broker``, the changelog on and flushed."""
    client = connect(redis_url, cluster=False)
    await client.flushall()
    store = RedisStore(client, changelog=broker is not None)
    shops = live_data.live_shops(SHOPS)
    now = datetime.now(UTC)
    ingestor = await offline_ingestor(
        store, topics, [(s.shop_id, s.timezone) for s in shops], now, retention_days=DAYS
    )
    parts: dict[tuple[str, int], list[Record]] = defaultdict(list)
    stamp = live_data.current_stamp()
    for kind, key, value in live_data.events(n, shops):
        records = parts[(getattr(topics, kind), zlib.crc32(key) % PARTITIONS)]
        records.append(Record(len(records), key, live_data.restamp(value, stamp)))
    for topic, partition in parts:
        await ingestor.assign(topic, partition)
    flusher = _flusher(broker, topics, client) if broker is not None else None
    if flusher is not None:
        assert flusher.producer is not None
        await flusher.producer.start()
        await client.set("us:cl:at", 0)
    sync = sync_redis.Redis.from_url(redis_url)
    cpu0, redis0, broker0 = time.process_time(), redis_cpu_seconds(sync), _broker_cpu(broker)
    started = time.perf_counter()
    since_flush = 0
    for i in range(0, max(len(r) for r in parts.values()), batch):
        for (topic, partition), records in parts.items():
            if i < len(records):
                await ingestor.process(topic, partition, records[i : i + batch])
                since_flush += len(records[i : i + batch])
        if flusher is not None and since_flush >= flush_events:
            await flusher.flush()
            since_flush = 0
    if flusher is not None:
        await flusher.flush()
        assert flusher.producer is not None
        await flusher.producer.stop()
    out = {
        "seconds": time.perf_counter() - started,
        "worker_cpu": time.process_time() - cpu0,
        "redis_cpu": redis_cpu_seconds(sync) - redis0,
        "broker_cpu": _broker_cpu(broker) - broker0,
        "counter_sets": counter_sets(sync),
    }
    sync.close()
    await client.aclose()
    return out


def _flusher(broker: EmbeddedBroker, topics: Topics, client: Any) -> ChangelogFlusher:
    from prometheus_client import CollectorRegistry

    settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=topics.prefix)
    flusher = ChangelogFlusher(
        settings=settings,
        state=ChangelogState(client),
        metrics=ChangelogMetrics(CollectorRegistry()),
        ready=asyncio.Event(),
    )
    flusher.producer = flusher._factory()
    return flusher


def _broker_cpu(broker: EmbeddedBroker | None) -> float:
    pid = broker.pid if broker is not None else None
    return cpu_seconds(pid) if pid else 0.0


async def topic_bytes(bootstrap: str, topic: str) -> dict[str, int]:
    """Records and bytes on the topic, and what compaction keeps: each key's latest record."""
    records = sent = 0
    latest: dict[bytes, int] = {}
    async for fetched in read_to_end(bootstrap, topic):
        for r in fetched:
            size = len(r.key or b"") + len(r.value or b"")
            records += 1
            sent += size
            if r.value is None:
                latest.pop(r.key, None)
            else:
                latest[r.key] = size
    return {"records": records, "bytes": sent, "kept": sum(latest.values()), "keys": len(latest)}


async def timed_restore(redis_url: str, bootstrap: str, topic: str) -> dict[str, float]:
    """A restore into an emptied Redis: wall seconds, and the CPU seconds of this process and of
    Redis (what the wall time comes to on a machine with a core free for each)."""
    client = connect(redis_url, cluster=False)
    await client.flushall()
    sync = sync_redis.Redis.from_url(redis_url)
    cpu0, redis0 = time.process_time(), redis_cpu_seconds(sync)
    report = await restore(client, bootstrap, topic, retention_days=DAYS)
    cpu = time.process_time() - cpu0
    redis_cpu = redis_cpu_seconds(sync) - redis0
    sync.close()
    await client.aclose()
    return {"records": report.records, "seconds": report.seconds, "cpu": cpu, "redis": redis_cpu}


def report(off: dict[str, float], on: dict[str, float], sent: dict[str, int], n: int) -> str:
    us = 1e6 / n
    sets = on["counter_sets"]
    return (
        f"changelog cost, {n:,} live-shape events ({SHOPS:,} shops): "
        f"{n / off['seconds']:,.0f} events/s without, {n / on['seconds']:,.0f} with; per event "
        f"worker +{(on['worker_cpu'] - off['worker_cpu']) * us:.1f} us CPU "
        f"({off['worker_cpu'] * us:.1f} -> {on['worker_cpu'] * us:.1f}), Redis "
        f"+{(on['redis_cpu'] - off['redis_cpu']) * us:.1f} us ({off['redis_cpu'] * us:.1f} -> "
        f"{on['redis_cpu'] * us:.1f}), broker {on['broker_cpu'] * us:.1f} us; "
        f"{sent['records']:,} records, {sent['bytes'] / n:.0f} B per event sent; after compaction "
        f"{sent['keys']:,} keys, {sent['kept'] / sets:.0f} B per counter set ({sets:,.0f} sets)"
    )


def restore_line(r: dict[str, float], sent: dict[str, int], sets: float) -> str:
    """Speeds from the compacted topic: a restore writes each kept record once (what it reads
    past compaction costs the read only), so the rate per kept record is what scales."""
    kept_per_set = sent["keys"] / sets
    wall = sent["keys"] / r["seconds"] / kept_per_set
    busy = max(r["cpu"], r["redis"])  # the client and Redis take turns per call, each a core
    # CPU per record written: on a compacted topic a restore writes about the kept records
    cpu_rate = r["records"] / (r["cpu"] + r["redis"]) / kept_per_set
    full_sets = sum(len(s.cells) for s in live_data.live_shops(SHOPS)) * DAYS
    return (
        f"restore: {r['records']:,.0f} records in {r['seconds']:.1f} s (worker CPU "
        f"{r['cpu']:.1f} s, Redis {r['redis']:.1f} s, busiest {busy:.1f} s): {wall:,.0f} counter "
        f"sets/s on this machine, {cpu_rate:,.0f} per CPU second of worker + Redis "
        f"({kept_per_set:.2f} compacted records per counter set); {SHOPS:,} shops x {DAYS} days "
        f"({full_sets:,} counter sets, every cell counted every day): "
        f"~{full_sets / cpu_rate / 60:.0f} min of worker + Redis CPU, extrapolated"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2_500)
    parser.add_argument("--flush-events", type=int, default=FLUSH_EVENTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upsell-changelog-cost-") as tmp:
        redis = EmbeddedRedis(Path(tmp), appendonly=False).start()
        broker = EmbeddedBroker(Path(tmp)).start()
        topics = Topics("cl.")
        try:
            asyncio.run(ensure_topics(broker.bootstrap, topics, PARTITIONS))
            off = asyncio.run(count(redis.url, None, topics, args.events, args.batch))
            on = asyncio.run(
                count(redis.url, broker, topics, args.events, args.batch, args.flush_events)
            )
            sent = asyncio.run(topic_bytes(broker.bootstrap, topics.changelog))
            line = report(off, on, sent, args.events)
            print(f"a flush per {args.flush_events:,} events counted; {line}", flush=True)
            r = asyncio.run(timed_restore(redis.url, broker.bootstrap, topics.changelog))
            print(restore_line(r, sent, on["counter_sets"]), flush=True)
        finally:
            broker.stop()
            redis.stop()


if __name__ == "__main__":
    main()
