"""Freshness: produce -> visible in the API, while background traffic flows at a given rate.

The background traffic runs in its own process: in the probe's process it starved the probe
(a Python producer at 36k events/s takes most of a core) and the figure measured the harness."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from stream.kafka.clients import make_producer
from stream.settings import Topics

PROBE_SHOP = "bench-probe"
ROOT = Path(__file__).resolve().parents[1]


async def measure_freshness(
    bootstrap: str, topics: Topics, api: str, rate: float, seconds: float, shape: str = "bench"
) -> dict[str, Any]:
    """Probe freshness for ``seconds`` while ``bench.traffic`` sends ``shape`` at ``rate``."""
    producer = make_producer(bootstrap)
    await producer.start()
    background = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.traffic",
        bootstrap,
        topics.prefix,
        str(rate),
        str(seconds + 10),
        shape,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(3)  # the traffic has started and settled

    async def views(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{api}/v1/shops/{PROBE_SHOP}/overview?period=today") as resp:
            return int((await resp.json())["metrics"]["banner_views"])

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
        background.terminate()
        await background.wait()
        await producer.stop()
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p99_ms": round(samples[max(0, int(len(samples) * 0.99) - 1)], 1),
        "samples": len(samples),
        "background_rate": round(rate),
    }
