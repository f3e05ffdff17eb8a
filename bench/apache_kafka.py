"""The Apache Kafka row of ``make bench``: the bench stream (same events, 50 shops, 8
partitions) on one node of Apache Kafka (KRaft, stream/devtools/apache_kafka.py, the JVM at full
speed), counted by one batch-engine worker into the stack's Redis, beside the row on the
embedded Tansu: what the broker users run costs, or gives.

``python -m bench.apache_kafka [--quick]`` runs it alone (and its Tansu twin), on a stack of its
own.
"""

from __future__ import annotations

from pathlib import Path

from bench.ours import StartedWorkers, run_alone, run_ours
from bench.report import render
from bench.rows import Report, RowId
from stream.devtools.apache_kafka import KafkaCluster
from stream.devtools.embedded import EmbeddedStack
from stream.settings import Topics


def run_row(
    stack: EmbeddedStack, workdir: Path, started: StartedWorkers, report: Report, quick: bool
) -> None:
    from bench.orchestrate import preload  # the table's own preload; orchestrate imports us

    n, cap = report.events or (200_000 if quick else 1_000_000), 40.0 if quick else 120.0
    report.events = n
    kafka = KafkaCluster(workdir / "apache-kafka", jvm_options=()).start()
    try:
        topics = Topics("benchkafka.")
        preload(stack, topics, n, 50, bootstrap=kafka.bootstrap)
        run = run_ours(
            stack, topics, "batch", 1, n, cap, workdir, started, bootstrap=kafka.bootstrap
        )
        report.record(RowId.KAFKA, run[0])
    finally:
        kafka.stop()


def _both(
    stack: EmbeddedStack, workdir: Path, started: StartedWorkers, report: Report, quick: bool
) -> None:
    """Alone: the Tansu row first (same stream), then Apache Kafka's."""
    from bench.orchestrate import preload

    report.events = 200_000 if quick else 1_000_000
    topics = Topics("bench.")
    preload(stack, topics, report.events, 50)
    report.record(
        RowId.ONE, run_ours(stack, topics, "batch", 1, report.events, 120.0, workdir, started)[0]
    )
    run_row(stack, workdir, started, report, quick)


if __name__ == "__main__":
    print(render(run_alone(_both, __doc__)))
