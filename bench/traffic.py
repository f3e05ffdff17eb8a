"""Steady background traffic at a fixed rate, from a pool of pre-built events.

The pool is generated once and re-sent in laps; upgrades get fresh event ids each lap (a re-sent
id would be a duplicate). Messages carry their keys and go to the partition the default
partitioner would pick, as a keyed ``send`` would. Used in a thread by the soak and as its own
process by the freshness probe, so the probe never waits behind the producer's CPU:
``python -m bench.traffic BOOTSTRAP PREFIX RATE SECONDS [SHAPE]``. SHAPE ``bench`` (default) is
the bench stream; ``live`` is production's shape (bench/live_data.py), each event stamped with
the second it is sent.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from bench import data, live_data
from stream.kafka.clients import make_producer
from stream.settings import Topics

POOL = 100_000
LIVE_SHOPS = 10_000


class Traffic:
    """Sends with ``send_batch`` per partition (a few µs per message, not the ~25 µs of
    ``send``): a Python producer at 36k events/s with ``send`` takes a whole core, which on a
    2-core machine leaves the worker and the probe fighting for the rest."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        rate: float,
        seconds: float,
        partitions: int = 8,
        shape: str = "bench",
    ) -> None:
        self.bootstrap, self.topics, self.rate, self.seconds = bootstrap, topics, rate, seconds
        self.sent = 0
        self.live = shape == "live"
        pool = (
            live_data.events(POOL, live_data.live_shops(LIVE_SHOPS), seed=7)
            if self.live
            else data.events(POOL, seed=7)
        )
        self.pool = [
            (getattr(topics, kind), DefaultPartitioner()(k, list(range(partitions)), []), v, k)
            for kind, k, v in pool
        ]

    async def run(self) -> None:
        producer = make_producer(self.bootstrap)
        await producer.start()
        started = time.monotonic()
        lap, i = 0, 0
        try:
            while (now := time.monotonic()) - started < self.seconds:
                due = int((now - started) * self.rate) - self.sent
                batches: dict[tuple[str, int], Any] = {}
                prefix = f'"event_id":"L{lap}-'.encode()
                stamp = int(time.time() * 1000)
                occurred = live_data.current_stamp(stamp / 1000)
                for _ in range(max(0, due)):
                    topic, part, value, key = self.pool[i]
                    if topic == self.topics.upgrades:  # a new upgrade, not a re-sent one
                        value = value.replace(b'"event_id":"b', prefix, 1)
                    if self.live:
                        value = live_data.restamp(value, occurred)
                    batch = batches.get((topic, part))
                    if batch is None:
                        batch = batches[(topic, part)] = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=stamp) is None:
                        await producer.send_batch(batch, topic, partition=part)
                        batch = batches[(topic, part)] = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=stamp)
                    self.sent += 1
                    i += 1
                    if i == len(self.pool):
                        i, lap = 0, lap + 1
                        prefix = f'"event_id":"L{lap}-'.encode()
                sends = [
                    await producer.send_batch(batch, topic, partition=part)
                    for (topic, part), batch in batches.items()
                ]
                await asyncio.gather(*sends)
                await asyncio.sleep(0.01)
        finally:
            await producer.stop()


if __name__ == "__main__":
    bootstrap, prefix, rate, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    shape = sys.argv[5] if len(sys.argv) > 5 else "bench"
    traffic = Traffic(bootstrap, Topics(prefix), float(rate), float(seconds), shape=shape)
    asyncio.run(traffic.run())
    print(f"sent {traffic.sent} in {seconds} s", flush=True)
