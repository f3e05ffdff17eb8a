"""``make bench`` / ``make bench-quick``: one table, measured in one run on the embedded broker.

Rows: raw aiokafka ceiling, a naive Faust Table, ours with the batch engine (1 and 2 workers)
and with the Faust engine; ours and Quix Streams on production's shape (bench/live_shape.py).
Also freshness at half the measured rate, Redis bytes per counter set, API latency on a year of
data, and the decoder's cost per event before and after its typed fast path. Prints the table
and writes JSON to bench/results/.
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

from bench import api_latency, data, decode_cost, live_shape
from bench import collector as collector_bench
from bench.freshness import measure_freshness
from bench.measure import Run, follow_progress, redis_memory, wait_for_sweep
from bench.raw import raw_ceiling
from stream.devtools.embedded import EmbeddedStack
from stream.devtools.workers import WorkerProcess, worker_env
from stream.kafka.clients import produce_records
from stream.kafka.topics import ensure_topics
from stream.settings import Topics

ROOT = Path(__file__).resolve().parents[1]


def run_ours(
    stack: EmbeddedStack,
    topics: Topics,
    engine: str,
    n_workers: int,
    total: int,
    cap_s: float,
    workdir: Path,
    started: StartedWorkers,
    keep: bool = False,
) -> tuple[Run, list[WorkerProcess]]:
    client = redis.Redis(port=stack.redis.port)
    client.flushall()
    group = f"bench-{engine}-{n_workers}-{time.monotonic_ns()}"
    ws = [
        WorkerProcess(
            worker_env(
                stack.broker.bootstrap,
                stack.redis.url,
                topics,
                engine,
                UPSELL_GROUP_ID=group,
                UPSELL_LOG_LEVEL="WARNING",
            ),
            workdir,
            name=f"{engine}-{n_workers}-{i}",
        )
        for i in range(n_workers)
    ]
    started.extend(ws)
    for w in ws:
        w.start()
    for w in ws:
        w.wait_ready(120)
    pids = [w.proc.pid for w in ws if w.proc]
    run = follow_progress(client, list(topics.counted), pids, total, cap_s)
    if keep:  # what follows is timed: the retention sweep first
        wait_for_sweep(client)
    else:
        for w in ws:
            w.stop()
    return run, ws


class StartedWorkers(list[WorkerProcess]):
    """Every worker the bench started: the ones still running are stopped when the bench ends,
    also when a row fails (a failed row had left its worker running after the bench)."""

    def __enter__(self) -> StartedWorkers:
        return self

    def __exit__(self, *_exc: object) -> None:
        for w in self:
            w.stop()


DEAD_LETTER_ROW = "ours, 1 worker, 10 % dead letters"
QUIX_VENV = ROOT / ".venv-quix"
QUIX_VERSION = "3.28.1"


def quix_python() -> str:
    """Quix Streams in its own virtualenv (made on first use); raises when it will not install."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"quixstreams=={QUIX_VERSION}",
                "orjson",
            ],
            check=True,
            timeout=600,
        )
    return str(python)


def counting_subprocess(
    python: str, module: str, stack: EmbeddedStack, topics: Topics, seconds: float
) -> Run:
    """Run one of the peers' counting apps; they print ``events N seconds S`` after warm-up."""
    proc = subprocess.run(
        [python, "-m", module, stack.broker.bootstrap, topics.prefix, str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 180,
    )
    found = re.search(
        r"events (\d+) seconds ([\d.]+) cpu ([\d.]+) rss ([\d.]+)", proc.stdout + proc.stderr
    )
    if found is None:
        raise RuntimeError(f"{module} failed: {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    events, window_s, cpu, rss = found.groups()
    return Run(int(events), float(window_s), float(cpu), float(rss))


def preload(
    stack: EmbeddedStack, topics: Topics, n: int, n_shops: int, dead_letter_every: int = 0
) -> None:
    asyncio.run(ensure_topics(stack.broker.bootstrap, topics, partitions=8))
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
    asyncio.run(produce_records(stack.broker.bootstrap, records))
    print(f"  produced in {time.monotonic() - t:.1f}s", flush=True)


def record(results: dict[str, Any], name: str, run: Run) -> None:
    results["rows"][name] = run.__dict__ | {"rate": run.rate}
    print(f"  {name}: {run.rate:,.0f} events/s", flush=True)


def total_forks(client: redis.Redis) -> int:
    """Redis's forks so far (AOF rewrites): one during a latency run explains its tail."""
    return int(client.info("stats")["total_forks"])


def query_latency(
    stack: EmbeddedStack, client: redis.Redis, api_url: str, requests: int
) -> tuple[dict[str, dict[str, float]], int]:
    """Load the year-long shop beside whatever Redis holds, time the queries through the API;
    returns the latencies and the Redis forks while they ran."""
    asyncio.run(api_latency.load_year(stack.redis.url))
    forks = total_forks(client)
    latency = asyncio.run(api_latency.measure(api_url, requests))
    return latency, total_forks(client) - forks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~2 minute version")
    args = parser.parse_args()
    n = 200_000 if args.quick else 1_000_000
    cap = 40.0 if args.quick else 120.0
    requests = 100 if args.quick else 300
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, broker: embedded Tansu (memory)",
        "events": n,
        "rows": {},
    }
    results["decoder_us"] = decode_cost.measure(50_000 if args.quick else 100_000)
    print(f"  decoder per event: {results['decoder_us']}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="upsell-bench-"))
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack, StartedWorkers() as started:
        topics = Topics("bench.")
        preload(stack, topics, n, 50)
        client = redis.Redis(port=stack.redis.port)

        raw = asyncio.run(raw_ceiling(stack.broker.bootstrap, list(topics.counted), n))
        record(results, "raw ceiling (aiokafka getmany + orjson)", raw)

        peer_s = 10.0 if args.quick else 20.0
        table = counting_subprocess(sys.executable, "bench.faust_table", stack, topics, peer_s)
        record(results, "naive Faust Table (views)", table)
        try:
            quix = counting_subprocess(quix_python(), "bench.quix_counts", stack, topics, peer_s)
        except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
            print(f"  Quix Streams: not measured ({exc})", flush=True)
            results["quix_error"] = str(exc)[:500]
        else:
            record(results, f"Quix Streams {QUIX_VERSION} (views)", quix)

        one, ws = run_ours(stack, topics, "batch", 1, n, cap, workdir, started, keep=True)
        record(results, "ours, 1 worker (batch)", one)
        results["redis_50_shops"] = redis_memory(client)
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
        results["api_latency"], results["api_latency_forks"] = query_latency(
            stack, client, ws[0].url, requests
        )
        print(f"  api latency: {results['api_latency']}", flush=True)
        for w in ws:
            w.stop()

        # a tenth of the stream bad: dead-lettering must not stall counting (this was a
        # 120-second bound on 16 messages inside an exactly-once test)
        bad_stream = Topics("benchdl.")
        preload(stack, bad_stream, n // 5, 50, dead_letter_every=10)
        record(
            results,
            DEAD_LETTER_ROW,
            run_ours(stack, bad_stream, "batch", 1, n // 5, cap, workdir, started)[0],
        )

        faust_run = run_ours(stack, topics, "faust", 1, n, cap, workdir, started)[0]
        record(results, "ours, Faust engine", faust_run)
        record(
            results,
            "ours, 2 workers (batch)",
            run_ours(stack, topics, "batch", 2, n, cap, workdir, started)[0],
        )

        # many shops: the same volume spread over 10,000 shops
        many = Topics("bench10k.")
        preload(stack, many, n, 10_000)
        run, ws = run_ours(stack, many, "batch", 1, n, cap, workdir, started, keep=True)
        record(results, "ours, 1 worker, 10,000 shops", run)
        results["redis_10k_shops"] = redis_memory(client)
        results["api_latency_10k_shops"], results["api_latency_10k_shops_forks"] = query_latency(
            stack, client, ws[0].url, requests
        )
        for w in ws:
            w.stop()

        live_rows(stack, workdir, started, results, args.quick)
        results["collector"] = collector_bench.measure_collector(
            stack, workdir, 5 if args.quick else 15, started
        )
        print(f"  {collector_bench.render(results['collector'])}", flush=True)

    out = ROOT / "bench" / "results" / ("quick.json" if args.quick else "full.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(render(results))
    print(f"\n(JSON: {out.relative_to(ROOT)})")


def live_rows(
    stack: EmbeddedStack,
    workdir: Path,
    started: StartedWorkers,
    results: dict[str, Any],
    quick: bool,
) -> None:
    """Production's shape (bench/live_shape.py): ours and Quix on a backlog, then steady."""
    n, cap, steady_s, peer_s = (
        (200_000, 40.0, 15.0, 10.0) if quick else (1_000_000, 120.0, 30.0, 20.0)
    )

    def quix(topics: Topics) -> Run | None:
        try:
            return counting_subprocess(quix_python(), "bench.quix_counts", stack, topics, peer_s)
        except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
            print(f"  Quix Streams, live shape: not measured ({exc})", flush=True)
            return None

    live = live_shape.run_rows(stack, workdir, started, n, cap, steady_s, run_ours, quix)
    record(results, live_shape.OURS_ROW, live["ours"])
    if live["quix"] is not None:
        record(results, live_shape.QUIX_ROW, live["quix"])
    results["live_shape"] = {"steady": live["steady"], "redis": live["redis"]}


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the targets of the benchmark issue."""
    rows = results["rows"]
    ours = rows["ours, 1 worker (batch)"]["rate"]
    raw = rows["raw ceiling (aiokafka getmany + orjson)"]["rate"]
    table = rows["naive Faust Table (views)"]["rate"]
    quix = next((r["rate"] for k, r in rows.items() if k.startswith("Quix")), None)
    many = rows["ours, 1 worker, 10,000 shops"]["rate"]
    bad = rows.get(DEAD_LETTER_ROW, {}).get("rate", 0.0)
    lat = results["api_latency"]
    out = [
        (">= 50k events/s per worker", f"{ours:,.0f}", ours >= 50_000),
        (">= 40 % of the raw ceiling", f"{100 * ours / raw:.0f} %", ours >= 0.4 * raw),
        (">= 10x the naive Faust Table", f"{ours / table:.1f}x", ours >= 10 * table),
        (
            ">= 2x Quix Streams",
            f"{ours / quix:.1f}x" if quix else "not measured",
            bool(quix and ours >= 2 * quix),
        ),
        (
            "freshness p99 < 1 s",
            f"{results['freshness_ms']['p99_ms']} ms",
            results["freshness_ms"]["p99_ms"] < 1000,
        ),
        (
            "overview p99 < 10 ms (this month)",
            f"{lat['overview this_month']['p99_ms']} ms",
            lat["overview this_month"]["p99_ms"] < 10,
        ),
        (
            "overview p99 < 50 ms (year to date)",
            f"{lat['overview year_to_date']['p99_ms']} ms",
            lat["overview year_to_date"]["p99_ms"] < 50,
        ),
        (
            "<= 200 bytes of Redis per counter set",
            f"{results['redis_50_shops']['bytes_per_counter_set']} B",
            results["redis_50_shops"]["bytes_per_counter_set"] <= 200,
        ),
        (
            "10 % dead letters >= half the clean rate",
            f"{100 * bad / ours:.0f} %" if bad else "not measured",
            bad >= 0.5 * ours,
        ),
        (
            "10,000 shops within 20 % of 50 shops",
            f"{100 * (many / ours - 1):+.0f} %",
            many >= 0.8 * ours,
        ),
    ]
    return out + live_shape.targets(results)


def _whole_or_dash(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"  # NaN: not measured for this row


def render(results: dict[str, Any]) -> str:
    lines = [
        f"machine: {results['machine']}; {results['events']:,} events per run",
        "",
        "| row | events/s | CPU % | Redis CPU % | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results["rows"].items():
        cpu, redis_cpu, rss = (
            _whole_or_dash(r.get(k, float("nan")))
            for k in ("cpu_percent", "redis_cpu_percent", "peak_rss_mb")
        )
        lines.append(f"| {name} | {r['rate']:,.0f} | {cpu} | {redis_cpu} | {rss} |")
    f = results["freshness_ms"]
    m50, m10k = results["redis_50_shops"], results["redis_10k_shops"]
    lines += [
        "",
        f"freshness (produce -> visible in the API) at half the 1-worker rate: "
        f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms ({f['samples']} probes)",
        f"Redis, 50 shops: {m50['used_mb']} MB for {m50['counter_sets']:,} (shop, day, group, "
        f"variation) counter sets = {m50['bytes_per_counter_set']} bytes each (all state counted)",
        f"Redis, 10,000 shops: {m10k['used_mb']} MB for {m10k['counter_sets']:,} counter sets = "
        f"{m10k['bytes_per_counter_set']} bytes each",
        "",
        "| query (one shop: 50 groups x 4 variations, a year of data) | p50 ms | p99 ms "
        "| p50 / p99 ms beside 10,000 shops |",
        "|---|---:|---:|---:|",
    ]
    for name, v in results["api_latency"].items():
        w = results["api_latency_10k_shops"][name]
        lines.append(f"| {name} | {v['p50_ms']} | {v['p99_ms']} | {w['p50_ms']} / {w['p99_ms']} |")
    lines += [
        "",
        f"Redis forks (AOF rewrites) while the queries ran: "
        f"{results.get('api_latency_forks', '-')} / "
        f"{results.get('api_latency_10k_shops_forks', '-')} beside 10,000 shops",
    ]
    lines += live_shape.render(results)
    decoder = results.get("decoder_us")
    if decoder:
        lines += [
            "",
            f"decoder per event (bench stream, one process): orjson.loads alone "
            f"{decoder['orjson_loads_us']} us; contract validator (every event before the typed "
            f"fast path) {decoder['validator_us']} us; Decoder {decoder['decoder_us']} us",
        ]
    if "collector" in results:
        lines += ["", collector_bench.render(results["collector"])]
    lines += ["", "| target | measured | |", "|---|---:|---|"]
    for target, measured, met in targets(results):
        lines.append(f"| {target} | {measured} | {'met' if met else 'MISSED'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
