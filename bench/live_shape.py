"""The live-shape rows of ``make bench``: production's shape (bench/live_data.py) instead of the
bench stream's backfill shape.

Two measurements on topics of their own (prefix ``live.``):

- **backlog**: the worker (and, beside it, Quix Streams) counts a pre-loaded backlog of
  live-shape events as fast as it can: events/s on production's shape;
- **steady**: live-shape traffic produced at a fixed rate close to that limit while the freshness
  probe runs; a sampler reads the CPU seconds of the worker, Redis and the broker and the events
  applied, so each cost is per event counted: the inputs of the capacity plan (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis

from bench import live_data, peers
from bench.freshness import measure_freshness
from bench.measure import Sampler, applied_events, redis_cpu_seconds, redis_memory
from bench.ours import StartedWorkers, run_alone, run_ours
from bench.report import live_lines
from bench.rows import Report, RowId
from stream.devtools.embedded import EmbeddedStack
from stream.kafka.clients import produce_records
from stream.kafka.topics import ensure_topics
from stream.settings import Topics

SHOPS = 10_000
STEADY_FRACTION = 0.8  # the steady rate, as a share of the backlog rate


def preload(stack: EmbeddedStack, topics: Topics, n: int) -> None:
    """The shops' settings, then ``n`` live-shape events stamped now (their shops' local day)."""
    asyncio.run(ensure_topics(stack.broker.bootstrap, topics, partitions=8))
    shops = live_data.live_shops(SHOPS)
    print(f"preloading {n:,} live-shape events ({SHOPS:,} shops, Zipf-skewed)...", flush=True)
    stamp = live_data.current_stamp()
    records = [(topics.shops, k, v) for _t, k, v in live_data.settings(shops)]
    records += [
        (getattr(topics, kind), k, live_data.restamp(v, stamp))
        for kind, k, v in live_data.events(n, shops)
    ]
    asyncio.run(produce_records(stack.broker.bootstrap, records))


def steady(
    stack: EmbeddedStack,
    topics: Topics,
    api_url: str,
    worker_pids: list[int],
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """Live-shape traffic at ``rate`` for ``seconds`` while freshness is probed; per-event CPU of
    the worker(s), Redis and the broker over the steady part of it."""
    client = redis.Redis(port=stack.redis.port)
    broker_pid = stack.broker.pid
    assert broker_pid is not None, "the embedded broker is not running"
    with Sampler(
        lambda: applied_events(client, list(topics.counted)),
        lambda: redis_cpu_seconds(client),
        worker_pids,
        broker_pid,
    ) as sampler:
        fresh = asyncio.run(
            measure_freshness(stack.broker.bootstrap, topics, api_url, rate, seconds, shape="live")
        )
    # the traffic runs 3 s before the probes and up to 10 s after: measure while both run
    costs = sampler.costs(skip_s=4.0, tail_s=1.0)
    return {"offered_per_s": round(rate), "freshness_ms": fresh, **costs}


def run_rows(
    stack: EmbeddedStack,
    workdir: Path,
    started: StartedWorkers,
    report: Report,
    quick: bool,
) -> None:
    """Backlog rate of ours and Quix on the live shape, then the steady phase at
    ``STEADY_FRACTION`` of ours, into ``report``."""
    n, cap_s, steady_s, peer_s = (
        (200_000, 40.0, 15.0, 10.0) if quick else (1_000_000, 120.0, 30.0, 20.0)
    )
    topics = Topics("live.")
    preload(stack, topics, n)
    client = redis.Redis(port=stack.redis.port)
    quix = peers.quix(stack.broker.bootstrap, topics, peer_s)
    ours, workers = run_ours(stack, topics, "batch", 1, n, cap_s, workdir, started, keep=True)
    report.record(RowId.LIVE, ours)
    report.record(RowId.LIVE_QUIX, quix)
    memory = redis_memory(client)
    pids = [w.proc.pid for w in workers if w.proc]
    rate = STEADY_FRACTION * ours.rate
    print(f"  live shape: steady traffic at {rate:,.0f}/s for {steady_s:.0f} s...", flush=True)
    steady_run = steady(stack, topics, workers[0].url, pids, rate, steady_s)
    for w in workers:
        w.stop()
    report.live_shape = {"steady": steady_run, "redis": memory}


def main() -> None:
    """``python -m bench.live_shape [--quick]``: these rows alone, on a stack of their own."""
    report = run_alone(run_rows, __doc__)
    ours, quix = report.rate(RowId.LIVE), report.rate(RowId.LIVE_QUIX)
    if ours and quix:
        print(f"ours / Quix Streams on the live shape: {ours / quix:.1f}x")
    print("\n".join(live_lines(report)))


if __name__ == "__main__":
    main()
