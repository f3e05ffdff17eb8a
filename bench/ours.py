"""Our workers in the bench: started as subprocesses on a stream, followed until they have
applied it, and always stopped when the bench ends."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from bench.measure import Run, follow_progress, wait_for_sweep
from bench.rows import Report
from stream.devtools.embedded import EmbeddedStack
from stream.devtools.workers import WorkerProcess, worker_env
from stream.settings import Topics


class StartedWorkers(list[WorkerProcess]):
    """Every worker the bench started: the ones still running are stopped when the bench ends,
    also when a row fails (a failed row had left its worker running after the bench)."""

    def __enter__(self) -> StartedWorkers:
        return self

    def __exit__(self, *_exc: object) -> None:
        for w in self:
            w.stop()


def start_workers(
    bootstrap: str,
    redis_url: str,
    topics: Topics,
    engine: str,
    n_workers: int,
    workdir: Path,
    started: StartedWorkers,
    **extra_env: str,
) -> list[WorkerProcess]:
    """``n_workers`` workers in a consumer group of their own (not waited for)."""
    group = f"bench-{engine}-{n_workers}-{time.monotonic_ns()}"
    env = worker_env(
        bootstrap,
        redis_url,
        topics,
        engine,
        UPSELL_GROUP_ID=group,
        UPSELL_LOG_LEVEL="WARNING",
        # the rows count the same topics again from a flushed Redis: with the state changelog
        # a worker would restore the last row's state instead (its cost has rows of its own,
        # python -m bench.changelog_cost)
        **({"UPSELL_CHANGELOG": "off"} | extra_env),
    )
    ws = [WorkerProcess(env, workdir, name=f"{engine}-{n_workers}-{i}") for i in range(n_workers)]
    started.extend(ws)
    for w in ws:
        w.start()
    return ws


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
    bootstrap: str | None = None,
) -> tuple[Run, list[WorkerProcess]]:
    """Count ``total`` events of ``topics`` from a flushed Redis; ``keep`` leaves the workers
    running (for the rows timed after it, once their retention sweep is done). ``bootstrap``:
    another broker than the stack's (Apache Kafka's row)."""
    client = redis.Redis(port=stack.redis.port)
    client.flushall()
    broker = bootstrap or stack.broker.bootstrap
    ws = start_workers(broker, stack.redis.url, topics, engine, n_workers, workdir, started)
    pids = [w.proc.pid for w in ws if w.proc]
    # followed from the start, not from readiness: on a busy machine workers had counted the
    # whole stream before they answered ready, and the 2-worker row read 0 events/s
    run = follow_progress(client, list(topics.counted), pids, total, cap_s)
    for w in ws:
        w.wait_ready(120)  # raises with its log if a worker died
    if keep:  # what follows is timed: the retention sweep first
        wait_for_sweep(client)
    else:
        for w in ws:
            w.stop()
    return run, ws


Rows = Callable[[EmbeddedStack, Path, StartedWorkers, Report, bool], None]


def run_alone(rows: Rows, description: str | None) -> Report:
    """``python -m bench.<module> [--quick]``: one module's rows on a stack of their own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    workdir = Path(tempfile.mkdtemp(prefix="upsell-bench-"))
    report = Report(events=0)
    with EmbeddedStack(workdir / "stack", appendonly=True) as stack, StartedWorkers() as started:
        rows(stack, workdir, started, report, quick)
    return report
