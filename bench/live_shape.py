"""The live-shape rows of ``make bench``: production's shape (bench/live_data.py) instead of the
bench stream's backfill shape.

Two measurements on topics of their own (prefix ``live.``):

- **backlog**: the worker (and, beside it, Quix Streams) counts a pre-loaded backlog of
  live-shape events as fast as it can: events/s on production's shape;
- **steady**: live-shape traffic produced at a fixed rate close to that limit while the freshness
  probe runs; a sampler reads the CPU seconds of the worker, Redis and the broker and the events
  applied, so each cost is per event counted: the inputs of the README's capacity plan.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench import live_data
from bench.freshness import measure_freshness
from bench.measure import Run, applied_events, cpu_seconds, redis_cpu_seconds, redis_memory
from stream.devtools.embedded import EmbeddedStack
from stream.kafka.clients import produce_records
from stream.kafka.topics import ensure_topics
from stream.settings import Topics

SHOPS = 10_000
OURS_ROW = "ours, 1 worker, live shape (10,000 shops, Zipf, today)"
QUIX_ROW = "Quix Streams (views), live shape"
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


@dataclass
class _Sample:
    at: float
    applied: int
    worker_s: float
    redis_s: float
    broker_s: float


@dataclass
class Sampler:
    """Reads progress and CPU seconds twice a second in a thread while the steady phase runs."""

    client: redis.Redis
    topics: list[str]
    worker_pids: list[int]
    broker_pid: int
    samples: list[_Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append(
                _Sample(
                    time.monotonic(),
                    applied_events(self.client, self.topics),
                    sum(cpu_seconds(p) for p in self.worker_pids),
                    redis_cpu_seconds(self.client),
                    cpu_seconds(self.broker_pid),
                )
            )

    def costs(self, skip_s: float, tail_s: float) -> dict[str, float]:
        """Per-event costs between ``skip_s`` after the first sample and ``tail_s`` before the
        last (the traffic's start and end are left out)."""
        first, last = self.samples[0].at + skip_s, self.samples[-1].at - tail_s
        window = [s for s in self.samples if first <= s.at <= last]
        a, b = window[0], window[-1]
        events = b.applied - a.applied
        seconds = b.at - a.at
        per_event = 1e6 / events if events else float("nan")
        return {
            "events_per_s": round(events / seconds),
            "seconds": round(seconds, 1),
            "worker_cpu_percent": round(100 * (b.worker_s - a.worker_s) / seconds),
            "redis_cpu_percent": round(100 * (b.redis_s - a.redis_s) / seconds),
            "broker_cpu_percent": round(100 * (b.broker_s - a.broker_s) / seconds),
            "worker_us_per_event": round((b.worker_s - a.worker_s) * per_event, 1),
            "redis_us_per_event": round((b.redis_s - a.redis_s) * per_event, 1),
            "broker_us_per_event": round((b.broker_s - a.broker_s) * per_event, 1),
        }


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
    with Sampler(client, list(topics.counted), worker_pids, broker_pid) as sampler:
        fresh = asyncio.run(
            measure_freshness(stack.broker.bootstrap, topics, api_url, rate, seconds, shape="live")
        )
    # the traffic runs 3 s before the probes and up to 10 s after: measure while both run
    costs = sampler.costs(skip_s=4.0, tail_s=1.0)
    return {"offered_per_s": round(rate), "freshness_ms": fresh, **costs}


# run_ours(stack, topics, engine, n_workers, total, cap_s, workdir, started, keep) of bench
RunOurs = Callable[..., tuple[Run, list[Any]]]
Peer = Callable[[Topics], Run | None]  # Quix Streams counting ``topics``, None if it failed


def run_rows(
    stack: EmbeddedStack,
    workdir: Path,
    started: list[Any],
    n: int,
    cap_s: float,
    steady_s: float,
    run_ours: RunOurs,
    quix: Peer,
) -> dict[str, Any]:
    """Backlog rate of ours and Quix on the live shape, then the steady phase at
    ``STEADY_FRACTION`` of ours; returns the results for ``results["live_shape"]``."""
    topics = Topics("live.")
    preload(stack, topics, n)
    client = redis.Redis(port=stack.redis.port)
    quix_run = quix(topics)
    ours, workers = run_ours(stack, topics, "batch", 1, n, cap_s, workdir, started, keep=True)
    memory = redis_memory(client)
    pids = [w.proc.pid for w in workers if w.proc]
    rate = STEADY_FRACTION * ours.rate
    print(f"  live shape: steady traffic at {rate:,.0f}/s for {steady_s:.0f} s...", flush=True)
    steady_run = steady(stack, topics, workers[0].url, pids, rate, steady_s)
    for w in workers:
        w.stop()
    return {"ours": ours, "quix": quix_run, "steady": steady_run, "redis": memory}


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) on the live shape; none when it did not run."""
    live, rows = results.get("live_shape"), results["rows"]
    if not live or OURS_ROW not in rows:
        return []
    ours = rows[OURS_ROW]["rate"]
    quix = rows.get(QUIX_ROW, {}).get("rate")
    s = live["steady"]
    p99 = s["freshness_ms"]["p99_ms"]
    return [
        (
            ">= 2x Quix Streams, live shape",
            f"{ours / quix:.1f}x" if quix else "not measured",
            bool(quix and ours >= 2 * quix),
        ),
        (
            f"live shape: freshness p99 < 1 s at {s['offered_per_s']:,}/s offered",
            f"{p99} ms ({s['events_per_s']:,}/s counted)",
            p99 < 1000,
        ),
    ]


def render(results: dict[str, Any]) -> list[str]:
    """The report's lines for the live-shape measurements (empty when they did not run)."""
    live = results.get("live_shape")
    if not live:
        return []
    s, m = live["steady"], live["redis"]
    f = s["freshness_ms"]
    return [
        "",
        f"live shape, steady: {s['offered_per_s']:,} events/s offered, {s['events_per_s']:,} "
        f"counted; freshness p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms ({f['samples']} probes); "
        f"CPU worker {s['worker_cpu_percent']} %, Redis {s['redis_cpu_percent']} %, broker "
        f"{s['broker_cpu_percent']} %",
        f"live shape, per event: worker {s['worker_us_per_event']} us, Redis "
        f"{s['redis_us_per_event']} us, broker {s['broker_us_per_event']} us of CPU; Redis "
        f"{m['used_mb']} MB for {m['counter_sets']:,} counter sets = "
        f"{m['bytes_per_counter_set']} bytes each",
    ]


def main() -> None:
    """``python -m bench.live_shape [--quick]``: these rows alone, on a stack of their own."""
    import argparse
    import tempfile

    from bench.__main__ import StartedWorkers, live_rows

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="upsell-live-"))
    results: dict[str, Any] = {"rows": {}}
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack, StartedWorkers() as started:
        live_rows(stack, workdir, started, results, args.quick)
    ours, quix = results["rows"][OURS_ROW]["rate"], results["rows"].get(QUIX_ROW, {}).get("rate")
    if quix:
        print(f"ours / Quix Streams on the live shape: {ours / quix:.1f}x")
    print("\n".join(render(results)))


if __name__ == "__main__":
    main()
