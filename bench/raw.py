"""The physical limit here: aiokafka getmany + orjson decode of every message, no state."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaConsumer

from bench.measure import Run


async def raw_ceiling(bootstrap: str, topics: list[str], total: int) -> Run:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
    )
    await consumer.start()
    seen = 0
    t0 = None
    n0 = 0
    cpu0 = time.process_time()
    try:
        while seen < total:
            got = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for records in got.values():
                for r in records:
                    orjson.loads(r.value)
                seen += len(records)
            if t0 is None and seen >= total * 0.05:
                t0, n0, cpu0 = time.monotonic(), seen, time.process_time()
        assert t0 is not None
        elapsed = time.monotonic() - t0
        return Run(seen - n0, elapsed, 100 * (time.process_time() - cpu0) / elapsed, float("nan"))
    finally:
        await consumer.stop()
