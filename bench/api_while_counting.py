"""API latency while one worker counts a backlog at full rate (issue 32): the overview of a
year-long shop, sampled one request after another only while the worker's checkpoints move
between 5 % and 95 % of the backlog. Six cases: the worker's own API and an ``upsell-stream
api`` process beside it, each alone and while another tenant floods that same server (hundreds
of concurrent requests of every kind and dozens of live streams with its own token); then the
api process beside a worker whose applies are bounded (250 events, one script in Redis at a
time), on the shared CPUs and with Redis and the API on a CPU the counting does not use. Under
a flood, samples are kept only once the flooder has its first answers.

``python -m bench.api_while_counting [--quick]`` runs it alone; ``make bench`` includes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import redis

from bench import api_latency
from bench.measure import applied_events
from bench.ours import StartedWorkers, start_workers
from bench.rows import Report
from stream.devtools.embedded import EmbeddedStack
from stream.devtools.workers import WorkerProcess
from stream.http.api.tokens_cli import add_token
from stream.settings import Topics

FLOOD_SHOP = "bench-00000"
CASES = (
    "worker serving",
    "worker serving, one tenant flooding",
    "api role beside it",
    "api role, one tenant flooding",
    "api role, applies of 250 one at a time",
    "api role, applies of 250 one at a time, Redis and API on a core of their own",
)
# what bounds a read's wait behind counting (README, "Performance"): each fetch applied in
# batches of at most 250 events, one apply script in Redis at a time
BOUNDED_APPLIES = {"UPSELL_APPLY_MAX_EVENTS": "250", "UPSELL_APPLY_CALLS_IN_FLIGHT": "1"}


def _pin(stack: EmbeddedStack, worker_pids: list[int], api_pid: int) -> None:
    """Redis, the api process and this sampler on CPU 0; the worker and the broker on CPU 1 (as
    when Redis has a host of its own): the rest of the machine's CPUs stay unused."""
    for pid in (stack.redis.pid, api_pid, 0):
        if pid is not None:
            os.sched_setaffinity(pid, {0})
    for pid in (stack.broker.pid, *worker_pids):
        if pid is not None:
            os.sched_setaffinity(pid, {1})


def _unpin(stack: EmbeddedStack) -> None:
    every = set(range(os.cpu_count() or 1))
    for pid in (stack.redis.pid, stack.broker.pid, 0):
        if pid is not None:
            os.sched_setaffinity(pid, every)


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "samples": 0}
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[max(0, int(len(samples) * 0.99) - 1)], 2),
        "samples": len(samples),
    }


async def _sample(
    base: str, token: str, counting: asyncio.Event, done: asyncio.Event
) -> list[float]:
    """Overview this_month of the year-long shop, one request after another, kept only while
    ``counting`` is set."""
    url = f"{base}/v1/shops/{api_latency.SHOP}/overview?period=this_month"
    headers = {"Authorization": f"Bearer {token}"}
    out: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        while not done.is_set():
            started = time.perf_counter()
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            if counting.is_set():
                out.append(elapsed if ok else 10_000.0)  # a failed answer counts as a miss
            if not counting.is_set():
                await asyncio.sleep(0.01)
    return out


async def _flood(
    base: str, token: str, done: asyncio.Event, statuses: Counter[int], flooding: Any
) -> None:
    """One tenant: 300 request loops over every route and 30 live streams, until ``done``. A
    loop sends its next request as soon as one is answered, and after a 429 or 503 waits the
    Retry-After (a client that ignores it too is a request rate to cap at the balancer: shares
    bound what a token holds at once, not how often it asks). ``flooding`` (a multiprocessing
    Event) is set at its first answer: the process takes seconds to start, while the worker
    already counts."""
    shop = f"{base}/v1/shops/{FLOOD_SHOP}"
    paths = [
        "/overview?period=year_to_date&compare=previous_year",
        "/timeseries?period=this_month&interval=day",
        "/groups?period=last_quarter&compare=previous_period",
        "/conversions?period=this_month",
        "/overview?period=today",
    ]
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def loop(i: int) -> None:
            while not done.is_set():
                pause = 1.0  # the server not up yet: no spinning on refused connections
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(shop + paths[i % len(paths)]) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                        if not flooding.is_set():
                            flooding.set()
                        pause = float(resp.headers.get("Retry-After", "0"))
                await asyncio.sleep(pause)

        async def stream() -> None:
            while not done.is_set():
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{shop}/live?period=today&groups=1") as resp:
                        statuses[resp.status] += 1
                        while not done.is_set() and resp.status == 200:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(resp.content.readany(), 0.5)
                await asyncio.sleep(0.2)

        await asyncio.gather(*(loop(i) for i in range(300)), *(stream() for _ in range(30)))


def _flood_process(base: str, token: str, stop: Any, flooding: Any, out: Any) -> None:
    """The flood in a process of its own, so the sampler's client never waits on it."""
    statuses: Counter[int] = Counter()

    async def main() -> None:
        done = asyncio.Event()

        async def watch() -> None:
            await asyncio.to_thread(stop.wait)  # a multiprocessing Event: waited in a thread
            done.set()

        await asyncio.gather(watch(), _flood(base, token, done, statuses, flooding))

    asyncio.run(main())
    out.put(dict(statuses))


async def _while_counting(
    client: redis.Redis, topics: Topics, total: int, base: str, tokens: tuple[str, str], flood: bool
) -> tuple[list[float], Counter[int], float]:
    """The samples taken while the worker counted, the flooder's answers, and the rate the
    worker counted at meanwhile (events per second)."""
    counting, done = asyncio.Event(), asyncio.Event()
    ctx = multiprocessing.get_context("spawn")
    stop, flooding, out = ctx.Event(), ctx.Event(), ctx.Queue()
    flooder = None
    if flood:
        args = (base, tokens[1], stop, flooding, out)
        flooder = ctx.Process(target=_flood_process, args=args)
        flooder.start()
    else:
        flooding.set()
    sampler = asyncio.create_task(_sample(base, tokens[0], counting, done))
    deadline = time.monotonic() + 240
    first: tuple[float, int] | None = None
    applied = 0
    while time.monotonic() < deadline:
        applied = await asyncio.to_thread(applied_events, client, list(topics.counted))
        if applied >= total * 0.95:
            break
        if applied >= total * 0.05 and flooding.is_set() and first is None:
            first = (time.monotonic(), applied)
            counting.set()
        await asyncio.sleep(0.05)
    counting.clear()
    rate = (applied - first[1]) / (time.monotonic() - first[0]) if first else 0.0
    done.set()
    stop.set()
    samples = await sampler
    statuses: Counter[int] = Counter()
    if flooder is not None:
        statuses.update(await asyncio.to_thread(out.get, True, 60))
        flooder.join(30)
    return samples, statuses, rate


def run_case(
    stack: EmbeddedStack,
    topics: Topics,
    total: int,
    workdir: Path,
    started: StartedWorkers,
    case: str,
    worker_settings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One case from a flushed Redis holding the year-long shop; the worker counts ``topics``
    (with ``worker_settings`` added to its environment)."""
    client = redis.Redis(port=stack.redis.port)
    client.flushall()
    asyncio.run(api_latency.load_year(stack.redis.url))
    tokens_file = workdir / f"tokens-{time.monotonic_ns()}"
    tokens = (add_token(tokens_file, [api_latency.SHOP]), add_token(tokens_file, [FLOOD_SHOP]))
    auth = {"UPSELL_AUTH": "on", "UPSELL_API_TOKENS": str(tokens_file)}
    api = None
    if case.startswith("api role"):
        env = {"UPSELL_REDIS_URL": stack.redis.url, "UPSELL_LOG_LEVEL": "WARNING", **auth}
        api = WorkerProcess(env, workdir, name=f"api-{len(started)}", role="api")
        started.append(api)
        api.start().wait_ready(60)
    bounded = BOUNDED_APPLIES if "applies of 250" in case else {}
    ws = start_workers(
        stack.broker.bootstrap,
        stack.redis.url,
        topics,
        "batch",
        1,
        workdir,
        started,
        **auth,
        **bounded,
        **(worker_settings or {}),
    )
    if "core of their own" in case and api is not None and api.proc is not None:
        _pin(stack, [w.proc.pid for w in ws if w.proc is not None], api.proc.pid)
    base = api.url if api is not None else ws[0].url
    try:
        samples, statuses, rate = asyncio.run(
            _while_counting(client, topics, total, base, tokens, flood="flooding" in case)
        )
    finally:
        _unpin(stack)
    for w in [*ws, *([api] if api else [])]:
        w.stop()
    out: dict[str, Any] = {**_percentiles(samples), "counted_per_s": round(rate)}
    if statuses:
        out["flood_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    return out


def run_rows(
    stack: EmbeddedStack, topics: Topics, total: int, workdir: Path, started: StartedWorkers
) -> dict[str, dict[str, Any]]:
    """Every case on ``topics`` (already holding ``total`` events); pinning needs two CPUs."""
    out: dict[str, dict[str, Any]] = {}
    for case in CASES:
        if "core of their own" in case and (os.cpu_count() or 1) < 2:
            print(f"  {case}: skipped, this machine has one CPU", flush=True)
            continue
        out[case] = run_case(stack, topics, total, workdir, started, case)
        print(f"  overview this_month while counting, {case}: {out[case]}", flush=True)
    return out


def render(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["Overview `this_month` of a year-long shop while one worker counts at full rate:"]
    for case, r in rows.items():
        flood = f"; flooder's answers {r['flood_statuses']}" if "flood_statuses" in r else ""
        lines.append(
            f"  {case}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms ({r['samples']}), counted"
            f" {r.get('counted_per_s', 0):,}/s{flood}"
        )
    return "\n".join(lines)


def rows(
    stack: EmbeddedStack, workdir: Path, started: StartedWorkers, report: Report, quick: bool
) -> None:
    """The three cases on a backlog of their own (400,000 events quick, 1,000,000 full)."""
    from bench.orchestrate import preload

    total = 400_000 if quick else 1_000_000
    topics = Topics("benchapi.")
    preload(stack, topics, total, 50)
    report.api_while_counting = run_rows(stack, topics, total, workdir, started)
    print(render(report.api_while_counting))


if __name__ == "__main__":
    from bench.ours import run_alone

    run_alone(rows, __doc__)
