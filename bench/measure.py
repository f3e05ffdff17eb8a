"""Process measurements for the benchmark: CPU share, peak RSS, our workers' progress, and Redis
memory per counter set."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import redis

from bench.peer_report import peak_rss_mb
from stream.state import keys
from stream.state.retention import last_expired_day

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Run:
    events: int
    seconds: float
    cpu_percent: float
    peak_rss_mb: float
    redis_cpu_percent: float = float("nan")  # Redis's main process, for our rows

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def applied_events(client: redis.Redis, topics: list[str], partitions: int = 8) -> int:
    """Messages covered by the partition checkpoints in Redis (offset + 1 summed). Reads the
    known checkpoint keys in one pipeline: a SCAN over all keys every poll would cost Redis
    more CPU than the apply scripts it measures."""
    names = [keys.partition(t, p) for t in topics for p in range(partitions)]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hget(name, "offset")
    return sum(int(offset) + 1 for offset in pipe.execute() if offset is not None)


def redis_cpu_seconds(client: redis.Redis) -> float:
    """CPU time of the Redis server process (all its threads; forked children not included)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def follow_progress(
    client: redis.Redis,
    topics: list[str],
    pids: list[int],
    target: int,
    cap_s: float,
    warmup_fraction: float = 0.05,
) -> Run:
    """Poll until ``target`` messages are applied (or ``cap_s``); the rate is measured from the
    moment ``warmup_fraction`` of the target was reached, so start-up and group joins are out."""
    t0 = None
    n0 = 0
    cpu0 = redis0 = 0.0
    deadline = time.monotonic() + cap_s
    done = 0
    while time.monotonic() < deadline:
        done = applied_events(client, topics)
        if t0 is None and done >= target * warmup_fraction:
            t0, n0 = time.monotonic(), done
            cpu0 = sum(cpu_seconds(p) for p in pids)
            redis0 = redis_cpu_seconds(client)
        if done >= target:
            break
        time.sleep(0.05)
    if t0 is None:
        return Run(done, 0.0, 0.0, max(peak_rss_mb(p) for p in pids))
    elapsed = time.monotonic() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    redis_cpu = redis_cpu_seconds(client) - redis0
    return Run(
        done - n0,
        elapsed,
        100 * cpu / elapsed if elapsed else 0.0,
        max(peak_rss_mb(p) for p in pids),
        100 * redis_cpu / elapsed if elapsed else 0.0,
    )


def counter_sets(client: redis.Redis) -> int:
    """Active (shop, day, group, variation) counter sets: distinct variations per var hash."""
    total = 0
    names = list(client.scan_iter(match="us:*:var:*", count=5000))
    for i in range(0, len(names), 2000):
        pipe = client.pipeline(transaction=False)
        for key in names[i : i + 2000]:
            pipe.hkeys(key)
        for fields in pipe.execute():
            total += len({f.split(b"\x1f", 1)[-1] for f in fields})
    return total


def redis_memory(client: redis.Redis) -> dict[str, float]:
    used = int(client.info("memory")["used_memory"])
    sets = counter_sets(client)
    return {
        "used_mb": round(used / 2**20, 1),
        "counter_sets": sets,
        "bytes_per_counter_set": round(used / sets, 1) if sets else 0.0,
    }


def wait_for_sweep(
    client: redis.Redis, retention_days: int = 800, timeout_s: float = 180.0
) -> None:
    """Wait until the workers' retention sweep of today's cutoff has finished (it starts 10 s
    after a worker does), so no sweep runs while the rows after it are timed."""
    marker = keys.retention_sweep(last_expired_day(time.time(), retention_days))
    deadline = time.monotonic() + timeout_s
    while client.get(marker) != keys.SWEEP_DONE.encode():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the retention sweep did not finish within {timeout_s:.0f} s")
        time.sleep(0.2)
