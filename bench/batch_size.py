"""What the fetch batch's size (``UPSELL_BATCH_MAX_EVENTS``) trades: the rate one worker counts
a backlog at, against the API's latency in an ``upsell-stream api`` process beside it. Each
partition batch is applied by one Lua script, and Redis runs nothing else meanwhile, so the
API's reads wait behind the largest apply; a smaller batch means shorter waits and more calls.

``python -m bench.batch_size [--quick]`` (not in ``make bench``: it is a sizing aid).
"""

from __future__ import annotations

from pathlib import Path

from bench.api_while_counting import run_case
from bench.ours import StartedWorkers
from bench.rows import Report
from stream.devtools.embedded import EmbeddedStack
from stream.settings import Topics

SIZES = (20_000, 5_000, 2_000, 1_000)


def rows(
    stack: EmbeddedStack, workdir: Path, started: StartedWorkers, report: Report, quick: bool
) -> None:
    from bench.orchestrate import preload

    total = 400_000 if quick else 1_000_000
    topics = Topics("benchbatch.")
    preload(stack, topics, total, 50)
    lines = [
        "| UPSELL_BATCH_MAX_EVENTS | counted per second | api role: overview p50 | p99 | samples |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        r = run_case(
            stack,
            topics,
            total,
            workdir,
            started,
            "api role beside it",
            {"UPSELL_BATCH_MAX_EVENTS": str(size)},
        )
        print(f"  batch of {size:,}: {r}", flush=True)
        lines.append(
            f"| {size:,} | {r['counted_per_s']:,} | {r['p50_ms']} ms | {r['p99_ms']} ms"
            f" | {r['samples']} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    from bench.ours import run_alone

    run_alone(rows, __doc__)
