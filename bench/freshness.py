"""Freshness: produce -> visible in the API, while background traffic flows at a given rate."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import orjson

from bench import data
from stream.kafka_clients import make_producer
from stream.settings import Topics

PROBE_SHOP = "bench-probe"


async def measure_freshness(
    bootstrap: str, topics: Topics, api: str, rate: float, seconds: float
) -> dict[str, Any]:
    producer = make_producer(bootstrap)
    await producer.start()
    stop = asyncio.Event()

    async def background() -> None:
        stream = data.events(10_000_000, seed=99)
        started, sent = time.monotonic(), 0
        while not stop.is_set():
            for _ in range(200):
                kind, key, value = next(stream)
                await producer.send(getattr(topics, kind), key=key, value=value)
                sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))

    async def views(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{api}/v1/shops/{PROBE_SHOP}/overview?period=today") as resp:
            return int((await resp.json())["metrics"]["banner_views"])

    task = asyncio.create_task(background())
    samples: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            seen = await views(session)
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                i += 1
                doc = {
                    "event_id": f"probe-{time.time_ns()}",
                    "shop_id": PROBE_SHOP,
                    "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "group_id": "probe",
                    "variation_id": "a",
                }
                t = time.perf_counter()
                await producer.send(topics.views, key=PROBE_SHOP.encode(), value=orjson.dumps(doc))
                while await views(session) <= seen:
                    if time.perf_counter() - t > 10:
                        break
                    await asyncio.sleep(0.002)
                samples.append((time.perf_counter() - t) * 1000)
                seen += 1
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await producer.stop()
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p99_ms": round(samples[max(0, int(len(samples) * 0.99) - 1)], 1),
        "samples": len(samples),
        "background_rate": round(rate),
    }
