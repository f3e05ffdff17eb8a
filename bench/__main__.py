"""``make bench`` / ``make bench-quick``: one table, measured in one run on the embedded broker.

Rows: raw aiokafka ceiling, a naive Faust Table, ours with the batch engine (1 and 2 workers)
and with the Faust engine. Also freshness at half the measured rate, Redis bytes per counter
set and API latency on a year of data. Prints the table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import api_latency, data
from bench.freshness import measure_freshness
from bench.measure import Run, follow_progress
from bench.raw import raw_ceiling
from stream.embedded import EmbeddedStack
from stream.kafka_clients import produce_records
from stream.settings import Topics
from stream.topics import ensure_topics
from tests.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]


def worker_env(
    bootstrap: str, redis_url: str, topics: Topics, engine: str, group: str
) -> dict[str, str]:
    return {
        "UPSELL_KAFKA_BOOTSTRAP": bootstrap,
        "UPSELL_REDIS_URL": redis_url,
        "UPSELL_TOPIC_PREFIX": topics.prefix,
        "UPSELL_AUTH": "off",
        "UPSELL_ENGINE": engine,
        "UPSELL_GROUP_ID": group,
        "UPSELL_LOG_LEVEL": "WARNING",
    }


def run_ours(
    stack: EmbeddedStack,
    topics: Topics,
    engine: str,
    n_workers: int,
    total: int,
    cap_s: float,
    workdir: Path,
    keep: bool = False,
) -> tuple[Run, list[WorkerProcess]]:
    client = redis.Redis(port=stack.redis.port)
    client.flushall()
    group = f"bench-{engine}-{n_workers}-{time.monotonic_ns()}"
    ws = [
        WorkerProcess(
            worker_env(stack.broker.bootstrap, stack.redis.url, topics, engine, group),
            workdir,
            name=f"{engine}-{n_workers}-{i}",
        )
        for i in range(n_workers)
    ]
    for w in ws:
        w.start()
    for w in ws:
        w.wait_ready(120)
    pids = [w.proc.pid for w in ws if w.proc]
    run = follow_progress(client, list(topics.counted), pids, total, cap_s)
    if not keep:
        for w in ws:
            w.stop()
    return run, ws


def faust_table(stack: EmbeddedStack, topics: Topics, seconds: float) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.faust_table",
            stack.broker.bootstrap,
            topics.prefix,
            str(seconds),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    found = re.search(r"events (\d+) seconds ([\d.]+)", proc.stdout + proc.stderr)
    if found is None:
        raise RuntimeError(f"faust table run failed: {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    del started
    return Run(int(found.group(1)), float(found.group(2)), float("nan"), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~1-2 minute version")
    args = parser.parse_args()
    n = 200_000 if args.quick else 1_000_000
    cap = 40.0 if args.quick else 120.0
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "events": n,
        "rows": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="upsell-bench-"))
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack:
        topics = Topics("bench.")
        asyncio.run(ensure_topics(stack.broker.bootstrap, topics, partitions=8))
        print(f"preloading {n:,} events (50 shops, 50 groups x 4 variations)...", flush=True)
        records = [(topics.shops, k, v) for _t, k, v in data.settings(50)]
        records += [(getattr(topics, kind), k, v) for kind, k, v in data.events(n)]
        t = time.monotonic()
        asyncio.run(produce_records(stack.broker.bootstrap, records))
        print(f"  produced in {time.monotonic() - t:.1f}s", flush=True)
        total = n
        rows = results["rows"]

        raw = asyncio.run(raw_ceiling(stack.broker.bootstrap, list(topics.counted), total))
        rows["raw ceiling (aiokafka getmany + orjson)"] = raw.__dict__ | {"rate": raw.rate}
        print(f"  raw ceiling: {raw.rate:,.0f} events/s", flush=True)

        table = faust_table(stack, topics, 10.0 if args.quick else 20.0)
        rows["naive Faust Table"] = table.__dict__ | {"rate": table.rate}
        print(f"  naive Faust Table: {table.rate:,.0f} events/s", flush=True)

        one, ws = run_ours(stack, topics, "batch", 1, total, cap, workdir, keep=True)
        rows["ours, 1 worker (batch)"] = one.__dict__ | {"rate": one.rate}
        print(f"  ours, 1 worker: {one.rate:,.0f} events/s", flush=True)
        client = redis.Redis(port=stack.redis.port)
        used = int(client.info("memory")["used_memory"])
        cells = 50 * 50 * 4 * 30
        results["redis_bytes_per_counter_set"] = round(used / cells, 1)
        results["freshness_ms"] = asyncio.run(
            measure_freshness(
                stack.broker.bootstrap,
                topics,
                ws[0].url,
                rate=one.rate / 2,
                seconds=5 if args.quick else 15,
            )
        )
        print(f"  freshness at {one.rate / 2:,.0f}/s: {results['freshness_ms']}", flush=True)
        client.flushall()
        asyncio.run(api_latency.load_year(stack.redis.url))
        results["api_latency"] = asyncio.run(
            api_latency.measure(ws[0].url, 100 if args.quick else 300)
        )
        print(f"  api latency: {results['api_latency']}", flush=True)
        for w in ws:
            w.stop()

        faust_run, _ = run_ours(stack, topics, "faust", 1, total, cap, workdir)
        rows["ours, Faust engine"] = faust_run.__dict__ | {"rate": faust_run.rate}
        print(f"  ours, Faust engine: {faust_run.rate:,.0f} events/s", flush=True)

        two, _ = run_ours(stack, topics, "batch", 2, total, cap, workdir)
        rows["ours, 2 workers (batch)"] = two.__dict__ | {"rate": two.rate}
        print(f"  ours, 2 workers: {two.rate:,.0f} events/s", flush=True)

    out = ROOT / "bench" / "results" / ("quick.json" if args.quick else "full.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(render(results))
    print(f"\n(JSON: {out.relative_to(ROOT)})")


def render(results: dict[str, Any]) -> str:
    lines = [
        f"machine: {results['machine']}; {results['events']:,} events",
        "",
        "| row | events/s | CPU % | peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for name, r in results["rows"].items():
        cpu = "-" if r["cpu_percent"] != r["cpu_percent"] else f"{r['cpu_percent']:.0f}"
        rss = "-" if r["peak_rss_mb"] != r["peak_rss_mb"] else f"{r['peak_rss_mb']:.0f}"
        lines.append(f"| {name} | {r['rate']:,.0f} | {cpu} | {rss} |")
    f = results["freshness_ms"]
    lines += [
        "",
        f"freshness (produce -> visible in the API) at half the 1-worker rate: "
        f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms ({f['samples']} probes)",
        f"Redis memory per (shop, day, group, variation) counter set: "
        f"{results['redis_bytes_per_counter_set']} bytes (all state / counter sets)",
        "",
        "| query (50 groups x 4 variations, a year of data) | p50 ms | p99 ms |",
        "|---|---:|---:|",
    ]
    for name, v in results["api_latency"].items():
        lines.append(f"| {name} | {v['p50_ms']} | {v['p99_ms']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
