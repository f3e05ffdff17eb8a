"""The collector row: one collector process, clients POSTing batches of 20 views as fast as it
answers; requests/s, events/s, time to 202 (p50, p99), then freshness from a one-event POST to
the worker's API showing it. ``python -m bench.collector [--quick]`` runs it on its own stack.

The load generator (aiohttp, 16 concurrent clients) runs in this process on the same cores as
the collector, the worker, the broker and Redis: the figures are for the whole machine."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from stream.collector.write_keys import KeyKind, KeyRegistry
from stream.devtools.demo import collector_views
from stream.devtools.embedded import EmbeddedStack
from stream.devtools.workers import WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from stream.state.redis import connect

SHOP = "bench-collector"
PROBE_SHOP = "bench-collector-probe"
BATCH = 20
CLIENTS = 16


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[max(0, int(len(ordered) * q) - 1)], 1)


async def _keys(redis_url: str) -> tuple[str, str]:
    redis = connect(redis_url, cluster=False)
    try:
        registry = KeyRegistry(redis, 0)
        return (
            await registry.add(SHOP, KeyKind.SECRET),
            await registry.add(PROBE_SHOP, KeyKind.SECRET),
        )
    finally:
        await redis.aclose()


async def _load(url: str, key: str, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            body = collector_views(BATCH, datetime.now(UTC))
            t = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 202:
                    latencies.append((time.perf_counter() - t) * 1000)
                else:
                    errors += 1

    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    window = time.monotonic() - started
    return {
        "requests_per_s": round(len(latencies) / window),
        "events_per_s": round(len(latencies) * BATCH / window),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": _pct(latencies, 0.99),
        "errors": errors,
        "seconds": round(window, 1),
    }


async def _freshness(url: str, key: str, api: str, probes: int) -> dict[str, Any]:
    """A one-event POST, then the worker's API polled until its view count moves."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    overview = f"{api}/v1/shops/{PROBE_SHOP}/overview?period=today"
    samples: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def views() -> int:
            async with session.get(overview) as resp:
                return int((await resp.json())["metrics"]["banner_views"])

        seen = await views()
        for _ in range(probes):
            t = time.perf_counter()
            async with session.post(
                url, data=collector_views(1, datetime.now(UTC)), headers=headers
            ) as resp:
                assert resp.status == 202, await resp.text()
            while time.perf_counter() - t < 10:
                if await views() > seen:
                    break
                await asyncio.sleep(0.002)
            samples.append((time.perf_counter() - t) * 1000)
            seen += 1
            await asyncio.sleep(0.05)
    return {"p50_ms": round(statistics.median(samples), 1), "p99_ms": _pct(samples, 0.99)}


def measure_collector(
    stack: EmbeddedStack, workdir: Path, seconds: float, started: list[WorkerProcess]
) -> dict[str, Any]:
    topics = Topics("benchcol.")
    asyncio.run(ensure_topics(stack.broker.bootstrap, topics, partitions=8))
    common = {
        "UPSELL_KAFKA_BOOTSTRAP": stack.broker.bootstrap,
        "UPSELL_KAFKA_IDEMPOTENCE": "off",
        "UPSELL_REDIS_URL": stack.redis.url,
        "UPSELL_TOPIC_PREFIX": topics.prefix,
        "UPSELL_AUTH": "off",
        "UPSELL_LOG_LEVEL": "WARNING",
        "UPSELL_GROUP_ID": f"bench-collector-{time.monotonic_ns()}",
        "UPSELL_COLLECTOR_KEY_RATE": "10000000",
        "UPSELL_COLLECTOR_KEY_BURST": "10000000",
        "UPSELL_COLLECTOR_ADDRESS_RATE": "10000000",
        "UPSELL_COLLECTOR_ADDRESS_BURST": "10000000",
    }
    worker = WorkerProcess(common, workdir, name="collector-bench-worker")
    collector = WorkerProcess(common, workdir, name="collector-bench", role="collector")
    started.extend([worker, collector])
    key, probe_key = asyncio.run(_keys(stack.redis.url))
    worker.start()
    collector.start().wait_ready(60)
    worker.wait_ready(120)
    url = f"{collector.url}/v1/collect"
    try:
        result = asyncio.run(_load(url, key, seconds))
        result["freshness"] = asyncio.run(_freshness(url, probe_key, worker.url, 30))
    finally:
        collector.stop()
        worker.stop()
    return result


def render(row: dict[str, Any]) -> str:
    f = row["freshness"]
    return (
        f"collector (1 process, batches of {BATCH}, {CLIENTS} clients): "
        f"{row['requests_per_s']:,} requests/s, {row['events_per_s']:,} events/s, "
        f"time to 202 p50 {row['p50_ms']} ms / p99 {row['p99_ms']} ms; "
        f"freshness POST -> API p50 {f['p50_ms']} ms / p99 {f['p99_ms']} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="upsell-bench-collector-"))
    started: list[WorkerProcess] = []
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack:
        try:
            row = measure_collector(stack, workdir, 5 if args.quick else 15, started)
        finally:
            for w in started:
                w.stop()
    print(render(row))
    print(orjson.dumps(row).decode())


if __name__ == "__main__":
    main()
