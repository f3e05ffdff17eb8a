"""The cluster row of ``make bench``: two workers on a 3-primary Redis Cluster count a backlog
of live-shape events (bench/live_shape.py), and the costs per event (worker CPU, Redis CPU of all
primaries, broker CPU, Redis bytes per counter set) are set beside one worker on one Redis on
the same shape. Every primary writes an AOF (everysec), as the bench's one Redis does. On 2
shared cores the rate cannot scale; the per-event costs are the point.

``python -m bench.cluster [--quick] [--changelog]`` runs it alone, on a stack of its own;
``--changelog`` with the state changelog on (docs/state.md, "On Redis Cluster"): its cost is
the difference from a run without.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from bench import live_shape
from bench.measure import Run, Sampler, applied_events, redis_cpu_seconds, redis_memory
from bench.ours import StartedWorkers, run_alone, start_workers
from bench.peer_report import peak_rss_mb
from bench.report import cluster_lines
from bench.rows import Report, RowId
from stream.devtools.embedded import EmbeddedStack
from stream.devtools.redis_cluster import LocalRedisCluster
from stream.settings import Topics
from stream.state.changelog_seed import SEED

PRIMARIES = 3
WORKERS = 2


def run_row(
    stack: EmbeddedStack,
    workdir: Path,
    started: StartedWorkers,
    report: Report,
    quick: bool,
    changelog: bool = False,
) -> None:
    """Pre-load the live shape on topics of its own, count it on a fresh cluster, record."""
    n, cap_s = (200_000, 120.0) if quick else (400_000, 300.0)
    topics = Topics("cluster.")
    live_shape.preload(stack, topics, n)
    # AOF everysec on every primary, as on the bench's one Redis: the costs compare
    cluster = LocalRedisCluster(workdir / "cluster", masters=PRIMARIES, appendonly=True).start()
    try:
        run, report.cluster = _count(
            stack, cluster, topics, n, cap_s, workdir, started, "on" if changelog else "off"
        )
    finally:
        cluster.stop()
    report.record(RowId.CLUSTER, run)


def _count(
    stack: EmbeddedStack,
    cluster: LocalRedisCluster,
    topics: Topics,
    n: int,
    cap_s: float,
    workdir: Path,
    started: StartedWorkers,
    changelog: str = "off",
) -> tuple[Run, dict[str, Any]]:
    client = RedisCluster.from_url(cluster.url)
    nodes = [redis.Redis(port=port) for port in cluster.ports]
    broker_pid = stack.broker.pid
    assert broker_pid is not None, "the embedded broker is not running"
    if changelog == "on":  # a fresh, empty cluster: no state of before to walk (the seed)
        client.set(SEED, "done")
    print(f"  Redis Cluster: {WORKERS} workers, {PRIMARIES} primaries, {n:,} events...", flush=True)
    ws = start_workers(
        stack.broker.bootstrap,
        cluster.url,
        topics,
        "batch",
        WORKERS,
        workdir,
        started,
        UPSELL_REDIS_CLUSTER="on",
        UPSELL_CHANGELOG=changelog,
    )
    pids = [w.proc.pid for w in ws if w.proc]
    counted = list(topics.counted)
    with Sampler(
        lambda: applied_events(client, counted),
        lambda: sum(redis_cpu_seconds(node) for node in nodes),
        pids,
        broker_pid,
    ) as sampler:
        deadline = time.monotonic() + cap_s
        while not sampler.samples or sampler.samples[-1].applied < n:
            for w in ws:
                assert w.alive(), f"{w.name} exited:\n{w.tail()}"
            assert time.monotonic() < deadline, f"the cluster counted too little in {cap_s} s"
            time.sleep(0.5)
    rss = max(peak_rss_mb(p) for p in pids)
    for w in ws:
        w.stop()
    costs = sampler.from_applied(n // 20, n)
    result = {
        "primaries": PRIMARIES,
        "workers": WORKERS,
        "costs": costs,
        "keys_per_primary": [int(node.dbsize()) for node in nodes],
        "redis": redis_memory(*nodes),
    }
    client.close()
    run = Run(
        int(costs["events"]),
        float(costs["seconds"]),
        float(costs["worker_cpu_percent"]),
        rss,
        float(costs["redis_cpu_percent"]),
    )
    return run, result


def main() -> None:
    changelog = "--changelog" in sys.argv
    if changelog:
        sys.argv.remove("--changelog")
    row = functools.partial(run_row, changelog=True) if changelog else run_row
    print("\n".join(cluster_lines(run_alone(row, __doc__))))


if __name__ == "__main__":
    main()
