"""``make soak``: run one worker for a long time at a steady rate; RSS, Redis memory and lag
must stay flat.

Starts the embedded broker and Redis (AOF on), one worker, and a producer at ``--rate`` events/s
(default: half the last measured 1-worker rate, else 30k) for ``--minutes``. Every
``--every`` seconds it prints produced, applied, lag, the worker's RSS and Redis memory. Growth is
measured from the end of the warm-up (the first fifth of the run) to the end. The conversions
ledger and the money-dedupe markers grow by design (one entry per upgrade); their share is
measured and shown apart from the rest of Redis (``used_memory_dataset``: keys and values, not
client buffers). Worker and Redis CPU, Redis forks (AOF rewrites) and the broker's CPU and RSS
are printed too: the embedded broker keeps every message in memory and ignores ``retention.ms``,
so over a long run it grows and slows down, and the worker's batches fill up accordingly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import data
from bench.measure import applied_events, cpu_seconds, redis_cpu_seconds
from bench.rows import RowId
from bench.traffic import Traffic
from stream.devtools.embedded import EmbeddedStack
from stream.devtools.workers import ROOT, WorkerProcess, worker_env
from stream.kafka.clients import produce_records
from stream.kafka.topics import ensure_topics
from stream.settings import Topics


@dataclass
class Sample:
    t: float
    produced: int
    applied: int
    rss_mb: float
    redis_mb: float
    by_design_mb: float  # ledger + dedupe markers
    worker_cpu: float  # % of one core since the previous sample
    redis_cpu: float
    forks: int  # Redis forks so far (AOF rewrites)
    broker_cpu: float
    broker_rss_mb: float

    @property
    def lag(self) -> int:
        return max(0, self.produced - self.applied)


def default_rate() -> float:
    for name in ("full.json", "quick.json"):
        path = ROOT / "bench" / "results" / name
        if path.exists():
            rows = json.loads(path.read_text())["rows"]
            for row in rows.values():
                if row.get("id") == RowId.ONE:
                    return float(row["rate"]) / 2
    return 30_000.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def by_design_mb(client: redis.Redis) -> float:
    """Memory of the keys that grow with every upgrade by design: ledgers and dedupe markers."""
    total = 0
    seen = 0
    sample_seen = 0
    for key in client.scan_iter(match="us:*:ledger", count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)  # exact: every member
    for key in client.scan_iter(match="us:*:seen:*", count=5000):
        if seen < 100:
            sample_seen += int(client.memory_usage(key) or 0)
        seen += 1
    if seen:
        total += sample_seen * seen // min(seen, 100)
    return total / 2**20


class Producer(threading.Thread):
    """The background traffic on its own event loop, in a thread (the soak samples little)."""

    def __init__(self, bootstrap: str, topics: Topics, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.traffic = Traffic(bootstrap, topics, rate, seconds)

    @property
    def sent(self) -> int:
        return self.traffic.sent

    def run(self) -> None:
        asyncio.run(self.traffic.run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (default: half max)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    args = parser.parse_args()
    rate = args.rate or default_rate()
    seconds = args.minutes * 60
    workdir = Path(tempfile.mkdtemp(prefix="upsell-soak-"))
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack:
        topics = Topics("soak.")
        asyncio.run(ensure_topics(stack.broker.bootstrap, topics, partitions=8))
        asyncio.run(
            produce_records(
                stack.broker.bootstrap, [(topics.shops, k, v) for _t, k, v in data.settings(50)]
            )
        )
        env = worker_env(
            stack.broker.bootstrap,
            stack.redis.url,
            topics,
            "batch",
            UPSELL_GROUP_ID="soak",
            UPSELL_LOG_LEVEL="WARNING",
        )
        worker = WorkerProcess(env, workdir, name="soak").start()
        worker.wait_ready(120)
        assert worker.proc is not None
        pid = worker.proc.pid
        client = redis.Redis(port=stack.redis.port)
        producer = Producer(stack.broker.bootstrap, topics, rate, seconds)
        print(f"soak: {args.minutes:g} min at {rate:,.0f} events/s, 1 worker (pid {pid})")
        print(
            f"{'t s':>6} {'produced':>11} {'applied':>11} {'lag':>8} {'RSS MB':>7} "
            f"{'Redis MB':>9} {'ledger+dedupe MB':>17} {'worker CPU %':>12} {'Redis CPU %':>11} "
            f"{'forks':>5} {'broker CPU %':>12} {'broker RSS MB':>13}",
            flush=True,
        )
        samples: list[Sample] = []
        started = time.monotonic()
        broker_pid = stack.broker.pid
        assert broker_pid is not None
        last_t, last_w, last_r = started, cpu_seconds(pid), redis_cpu_seconds(client)
        last_b = cpu_seconds(broker_pid)
        producer.start()
        try:
            while producer.is_alive() or (
                samples and samples[-1].lag and time.monotonic() - started < seconds + 120
            ):
                time.sleep(args.every if producer.is_alive() else 5)
                now, w_cpu, r_cpu = time.monotonic(), cpu_seconds(pid), redis_cpu_seconds(client)
                b_cpu = cpu_seconds(broker_pid)
                span = now - last_t
                s = Sample(
                    time.monotonic() - started,
                    producer.sent,
                    applied_events(client, list(topics.counted)),
                    rss_mb(pid),
                    # the data set, not client query buffers (a batch's payload) or the AOF buffer
                    int(client.info("memory")["used_memory_dataset"]) / 2**20,
                    by_design_mb(client),
                    100 * (w_cpu - last_w) / span,
                    100 * (r_cpu - last_r) / span,
                    int(client.info("stats")["total_forks"]),
                    100 * (b_cpu - last_b) / span,
                    rss_mb(broker_pid),
                )
                last_t, last_w, last_r, last_b = now, w_cpu, r_cpu, b_cpu
                samples.append(s)
                print(
                    f"{s.t:6.0f} {s.produced:11,} {s.applied:11,} {s.lag:8,} "
                    f"{s.rss_mb:7.1f} {s.redis_mb:9.1f} {s.by_design_mb:17.1f} "
                    f"{s.worker_cpu:12.0f} {s.redis_cpu:11.0f} {s.forks:5} "
                    f"{s.broker_cpu:12.0f} {s.broker_rss_mb:13.0f}",
                    flush=True,
                )
                if not worker.alive():
                    raise SystemExit("the worker died")
        finally:
            worker.stop()
        report(samples, seconds)


def report(samples: list[Sample], seconds: float) -> None:
    steady = [s for s in samples if s.t <= seconds + 1]
    warm = next(s for s in steady if s.t >= seconds / 5)
    last = steady[-1]
    # RSS moves with the batches in flight (up to ~2 rounds of records while Redis applies the
    # one before), so one sample is a poor baseline: growth is the peak of the rest of the run
    # over the peak of the first window after warm-up (the second fifth). A leak lifts the later
    # peaks; the batch-size jitter does not. The old figure (peak over the one sample at the end
    # of warm-up) is printed beside it.
    window = [s for s in steady if s.t < 2 * seconds / 5 and s.t >= warm.t]
    later = [s for s in steady if s.t >= 2 * seconds / 5] or window
    window_peak = max(s.rss_mb for s in window)
    later_peak = max(s.rss_mb for s in later)
    rss_growth = later_peak / window_peak - 1
    sample_growth = max(s.rss_mb for s in steady if s.t >= warm.t) / warm.rss_mb - 1
    rest_warm = warm.redis_mb - warm.by_design_mb
    rest_last = last.redis_mb - last.by_design_mb
    redis_growth = (rest_last - rest_warm) / rest_warm
    max_lag = max(s.lag for s in steady)
    final = samples[-1]
    rate = last.produced / last.t
    print()
    print(f"produced {final.produced:,} events at {rate:,.0f}/s; applied {final.applied:,}")
    print(
        f"worker RSS: peak {window_peak:.1f} MB in the first window after warm-up "
        f"(t {warm.t:.0f}-{2 * seconds / 5:.0f} s) -> peak {later_peak:.1f} MB after it: "
        f"{rss_growth:+.1%} (limit +10%); peak over the one sample at the end of warm-up "
        f"({warm.rss_mb:.1f} MB): {sample_growth:+.1%}"
    )
    print(
        f"Redis without ledger/dedupe {rest_warm:.1f} MB -> {rest_last:.1f} MB: "
        f"{redis_growth:+.1%} (limit +10%); ledger+dedupe grew "
        f"{last.by_design_mb - warm.by_design_mb:+.1f} MB (one entry per upgrade, by design)"
    )
    print(f"lag: max {max_lag:,} events, {max_lag / rate:.1f} s of traffic; final {final.lag:,}")
    ok = rss_growth < 0.10 and redis_growth < 0.10 and final.lag == 0
    print("verdict:", "flat" if ok else "NOT flat")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
