"""The bench's results: one typed row per measured configuration (looked up by ``RowId``, never by
its display label) and the run's other measurements, as printed and written to JSON."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bench.measure import Run
from bench.peers import QUIX_VERSION


class RowId(StrEnum):
    RAW = "raw"
    FAUST_TABLE = "faust_table"
    QUIX = "quix"
    ONE = "ours_1_worker"
    DEAD_LETTERS = "ours_dead_letters"
    FAUST = "ours_faust_engine"
    TWO = "ours_2_workers"
    MANY_SHOPS = "ours_10k_shops"
    LIVE = "ours_live_shape"
    LIVE_QUIX = "quix_live_shape"
    CLUSTER = "ours_cluster"
    KAFKA = "ours_1_worker_apache_kafka"


LABELS = {
    RowId.RAW: "raw ceiling (aiokafka getmany + orjson)",
    RowId.FAUST_TABLE: "naive Faust Table (views)",
    RowId.QUIX: f"Quix Streams {QUIX_VERSION} (views)",
    RowId.ONE: "ours, 1 worker (batch)",
    RowId.DEAD_LETTERS: "ours, 1 worker, 10 % dead letters",
    RowId.FAUST: "ours, Faust engine",
    RowId.TWO: "ours, 2 workers (batch)",
    RowId.MANY_SHOPS: "ours, 1 worker, 10,000 shops",
    RowId.LIVE: "ours, 1 worker, live shape (10,000 shops, Zipf, today)",
    RowId.LIVE_QUIX: "Quix Streams (views), live shape",
    RowId.CLUSTER: "ours, 2 workers, 3-primary Redis Cluster, live shape",
    RowId.KAFKA: "ours, 1 worker (batch), on Apache Kafka (1 node)",
}


@dataclass(frozen=True)
class Row:
    id: RowId
    run: Run

    @property
    def label(self) -> str:
        return LABELS[self.id]


def _machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        "broker: embedded Tansu (memory), Apache Kafka for its own row"
    )


@dataclass
class Report:
    """Everything one bench run measured; what did not run stays None."""

    events: int
    when: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    machine: str = field(default_factory=_machine)
    rows: dict[RowId, Row] = field(default_factory=dict)
    decoder_us: dict[str, float] | None = None
    freshness_ms: dict[str, float] | None = None
    redis_50_shops: dict[str, float] | None = None
    redis_10k_shops: dict[str, float] | None = None
    api_latency: dict[str, dict[str, float]] | None = None
    api_latency_forks: int | None = None
    api_latency_10k_shops: dict[str, dict[str, float]] | None = None
    api_latency_10k_shops_forks: int | None = None
    live_shape: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None
    collector: dict[str, Any] | None = None
    api_while_counting: dict[str, dict[str, Any]] | None = None
    not_measured: dict[str, str] = field(default_factory=dict)

    def record(self, row_id: RowId, run: Run | str) -> None:
        """A row's run, or (a string) why it was not measured."""
        if isinstance(run, str):
            self.not_measured[row_id] = run
            print(f"  {LABELS[row_id]}: not measured ({run})", flush=True)
            return
        self.rows[row_id] = Row(row_id, run)
        print(f"  {LABELS[row_id]}: {run.rate:,.0f} events/s", flush=True)

    def rate(self, row_id: RowId) -> float | None:
        row = self.rows.get(row_id)
        return row.run.rate if row else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"when": self.when, "machine": self.machine, "events": self.events}
        out["rows"] = {
            row.label: {"id": row.id.value, **row.run.__dict__, "rate": row.run.rate}
            for row in self.rows.values()
        }
        for name in (
            "decoder_us",
            "freshness_ms",
            "redis_50_shops",
            "redis_10k_shops",
            "api_latency",
            "api_latency_forks",
            "api_latency_10k_shops",
            "api_latency_10k_shops_forks",
            "live_shape",
            "cluster",
            "collector",
            "api_while_counting",
        ):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.not_measured:
            out["not_measured"] = self.not_measured
        return out
