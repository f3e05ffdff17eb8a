"""Process measurements for the benchmark: CPU share, peak RSS, our workers' progress, and Redis
memory per counter set."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from redis.cluster import RedisCluster

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


def applied_events(
    client: redis.Redis | RedisCluster, topics: list[str], partitions: int = 8
) -> int:
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
    start_s: float = 180.0,
) -> Run:
    """Poll until ``target`` messages are applied, from the workers' start; the rate is measured
    from the moment ``warmup_fraction`` of the target was reached (start-up and group joins are
    out) for at most ``cap_s``. Reaching that moment may take up to ``start_s``."""
    t0 = None
    n0 = 0
    cpu0 = redis0 = 0.0
    deadline = time.monotonic() + start_s
    done = 0
    while time.monotonic() < deadline:
        done = applied_events(client, topics)
        if t0 is None and done >= target * warmup_fraction:
            t0, n0 = time.monotonic(), done
            cpu0 = sum(cpu_seconds(p) for p in pids)
            redis0 = redis_cpu_seconds(client)
            deadline = t0 + cap_s
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


def total_forks(client: redis.Redis) -> int:
    """Redis's forks so far (AOF rewrites): one during a latency run explains its tail."""
    return int(client.info("stats")["total_forks"])


def redis_memory(*nodes: redis.Redis) -> dict[str, float]:
    """Redis bytes per counter set: one Redis, or every primary of a cluster (each its own)."""
    used = sum(int(node.info("memory")["used_memory"]) for node in nodes)
    sets = sum(counter_sets(node) for node in nodes)
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


@dataclass
class _Sample:
    at: float
    applied: int
    worker_s: float
    redis_s: float
    broker_s: float


@dataclass
class Sampler:
    """Reads progress and CPU seconds twice a second in a thread while a phase runs; the costs
    per event applied between two of its samples."""

    applied: Callable[[], int]  # events applied so far
    redis_cpu: Callable[[], float]  # CPU seconds of Redis (all its primaries) so far
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
                    self.applied(),
                    sum(cpu_seconds(p) for p in self.worker_pids),
                    self.redis_cpu(),
                    cpu_seconds(self.broker_pid),
                )
            )

    def costs(self, skip_s: float, tail_s: float) -> dict[str, float]:
        """Per-event costs between ``skip_s`` after the first sample and ``tail_s`` before the
        last (the traffic's start and end are left out)."""
        first, last = self.samples[0].at + skip_s, self.samples[-1].at - tail_s
        window = [s for s in self.samples if first <= s.at <= last]
        return self.between(window[0], window[-1])

    def from_applied(self, low: int, high: int) -> dict[str, float]:
        """Per-event costs from the first sample with ``low`` events applied to the first with
        ``high`` (or the last): a backlog's warm-up and drained tail are left out."""
        a = next(s for s in self.samples if s.applied >= low)
        b = next((s for s in self.samples if s.applied >= high), self.samples[-1])
        return self.between(a, b)

    @staticmethod
    def between(a: _Sample, b: _Sample) -> dict[str, float]:
        events = b.applied - a.applied
        seconds = b.at - a.at
        per_event = 1e6 / events if events else float("nan")
        return {
            "events": events,
            "events_per_s": round(events / seconds),
            "seconds": round(seconds, 1),
            "worker_cpu_percent": round(100 * (b.worker_s - a.worker_s) / seconds),
            "redis_cpu_percent": round(100 * (b.redis_s - a.redis_s) / seconds),
            "broker_cpu_percent": round(100 * (b.broker_s - a.broker_s) / seconds),
            "worker_us_per_event": round((b.worker_s - a.worker_s) * per_event, 1),
            "redis_us_per_event": round((b.redis_s - a.redis_s) * per_event, 1),
            "broker_us_per_event": round((b.broker_s - a.broker_s) * per_event, 1),
        }
