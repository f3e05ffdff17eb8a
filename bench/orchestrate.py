"""``make bench`` / ``make bench-quick``: one table, measured in one run on the embedded broker.

Rows: raw aiokafka ceiling, a naive Faust Table, ours with the batch engine (1 and 2 workers)
and with the Faust engine; ours and Quix Streams on production's shape (bench/live_shape.py);
two workers on a 3-primary Redis Cluster (bench/cluster.py); ours, 1 worker, on Apache Kafka
(bench/apache_kafka.py). Also freshness at half the
measured rate, Redis bytes per counter set, API latency on a year of data, and the decoder's
cost per event before and after its typed fast path. Prints the table (bench/report.py) and
writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import redis

from bench import (
    apache_kafka,
    api_latency,
    api_while_counting,
    cluster,
    data,
    decode_cost,
    live_shape,
    peers,
)
from bench import collector as collector_bench
from bench.freshness import measure_freshness
from bench.measure import redis_memory, total_forks
from bench.ours import StartedWorkers, run_ours
from bench.raw import raw_ceiling
from bench.report import render
from bench.rows import Report, RowId
from stream.devtools.embedded import EmbeddedStack
from stream.kafka.clients import produce_records
from stream.kafka.topics import ensure_topics
from stream.settings import Topics

ROOT = Path(__file__).resolve().parents[1]


def preload(
    stack: EmbeddedStack,
    topics: Topics,
    n: int,
    n_shops: int,
    dead_letter_every: int = 0,
    bootstrap: str | None = None,
) -> None:
    """The bench stream on ``topics`` of the stack's broker (or of ``bootstrap``)."""
    broker = bootstrap or stack.broker.bootstrap
    asyncio.run(ensure_topics(broker, topics, partitions=8))
    bad = f", every {dead_letter_every}th bad" if dead_letter_every else ""
    print(
        f"preloading {n:,} events ({n_shops:,} shops, 50 groups x 4 variations, 30 days{bad})...",
        flush=True,
    )
    events = data.events(n, n_shops=n_shops)
    if dead_letter_every:
        events = data.with_dead_letters(events, every=dead_letter_every)
    records = [(topics.shops, k, v) for _t, k, v in data.settings(n_shops)]
    records += [(getattr(topics, kind), k, v) for kind, k, v in events]
    t = time.monotonic()
    asyncio.run(produce_records(broker, records))
    print(f"  produced in {time.monotonic() - t:.1f}s", flush=True)


def query_latency(
    stack: EmbeddedStack, client: redis.Redis, api_url: str, requests: int
) -> tuple[dict[str, dict[str, float]], int]:
    """Load the year-long shop beside whatever Redis holds, time the queries through the API;
    returns the latencies and the Redis forks while they ran."""
    asyncio.run(api_latency.load_year(stack.redis.url))
    forks = total_forks(client)
    latency = asyncio.run(api_latency.measure(api_url, requests))
    return latency, total_forks(client) - forks


def bench_stream(
    stack: EmbeddedStack, workdir: Path, started: StartedWorkers, report: Report, quick: bool
) -> None:
    """The rows on the 50-shop bench stream: the peers, then ours with 1 worker (with freshness
    and query latency while it runs), 10 % dead letters, the Faust engine and 2 workers."""
    n, cap, requests = report.events, 40.0 if quick else 120.0, 100 if quick else 300
    topics = Topics("bench.")
    preload(stack, topics, n, 50)
    client = redis.Redis(port=stack.redis.port)
    bootstrap = stack.broker.bootstrap
    report.record(RowId.RAW, asyncio.run(raw_ceiling(bootstrap, list(topics.counted), n)))
    peer_s = 10.0 if quick else 20.0
    report.record(RowId.FAUST_TABLE, peers.faust_table(bootstrap, topics, peer_s))
    report.record(RowId.QUIX, peers.quix(bootstrap, topics, peer_s))

    one, ws = run_ours(stack, topics, "batch", 1, n, cap, workdir, started, keep=True)
    report.record(RowId.ONE, one)
    report.redis_50_shops = redis_memory(client)
    report.freshness_ms = asyncio.run(
        measure_freshness(bootstrap, topics, ws[0].url, one.rate / 2, 5 if quick else 15)
    )
    print(f"  freshness at {one.rate / 2:,.0f}/s: {report.freshness_ms}", flush=True)
    client.flushall()
    report.api_latency, report.api_latency_forks = query_latency(stack, client, ws[0].url, requests)
    print(f"  api latency: {report.api_latency}", flush=True)
    for w in ws:
        w.stop()

    # a tenth of the stream bad: dead-lettering must not stall counting (this was a
    # 120-second bound on 16 messages inside an exactly-once test)
    bad_stream = Topics("benchdl.")
    preload(stack, bad_stream, n // 5, 50, dead_letter_every=10)
    bad = run_ours(stack, bad_stream, "batch", 1, n // 5, cap, workdir, started)[0]
    report.record(RowId.DEAD_LETTERS, bad)
    report.record(RowId.FAUST, run_ours(stack, topics, "faust", 1, n, cap, workdir, started)[0])
    report.record(RowId.TWO, run_ours(stack, topics, "batch", 2, n, cap, workdir, started)[0])


def many_shops(
    stack: EmbeddedStack, workdir: Path, started: StartedWorkers, report: Report, quick: bool
) -> None:
    """The same volume spread over 10,000 shops, and query latency beside it."""
    n, cap, requests = report.events, 40.0 if quick else 120.0, 100 if quick else 300
    many = Topics("bench10k.")
    preload(stack, many, n, 10_000)
    client = redis.Redis(port=stack.redis.port)
    run, ws = run_ours(stack, many, "batch", 1, n, cap, workdir, started, keep=True)
    report.record(RowId.MANY_SHOPS, run)
    report.redis_10k_shops = redis_memory(client)
    report.api_latency_10k_shops, report.api_latency_10k_shops_forks = query_latency(
        stack, client, ws[0].url, requests
    )
    for w in ws:
        w.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~2 minute version")
    args = parser.parse_args()
    report = Report(events=200_000 if args.quick else 1_000_000)
    report.decoder_us = decode_cost.measure(50_000 if args.quick else 100_000)
    print(f"  decoder per event: {report.decoder_us}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="upsell-bench-"))
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack, StartedWorkers() as started:
        bench_stream(stack, workdir, started, report, args.quick)
        many_shops(stack, workdir, started, report, args.quick)
        live_shape.run_rows(stack, workdir, started, report, args.quick)
        report.collector = collector_bench.measure_collector(
            stack, workdir, 5 if args.quick else 15, started
        )
        print(f"  {collector_bench.render(report.collector)}", flush=True)
        cluster.run_row(stack, workdir, started, report, args.quick)
        apache_kafka.run_row(stack, workdir, started, report, args.quick)
        api_while_counting.rows(stack, workdir, started, report, args.quick)

    out = ROOT / "bench" / "results" / ("quick.json" if args.quick else "full.json")
    out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    print()
    print(render(report))
    print(f"\n(JSON: {out.relative_to(ROOT)})")
