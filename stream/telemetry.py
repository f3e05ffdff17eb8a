"""Prometheus metrics of a worker, in one registry handed to whoever records them. Only metrics:
a partition's progress behind the lag (the next offset, the last apply, the last applied
record's Kafka timestamp) is on the Ingestor's :class:`stream.ingest.types.PartitionState`; the
state changelog's metrics are declared beside this module (:mod:`stream.changelog_metrics`).

Labels are bounded: topics, partitions, outcomes, reason codes (the part before ':'), routes as
templates. Never a shop id or any other unbounded value.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class BatchTally(Protocol):
    """What one applied batch came to (the Ingestor's BatchOutcome offers these)."""

    @property
    def counted(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def dead_letters(self) -> int: ...
    @property
    def skipped(self) -> int: ...


@dataclass(slots=True)
class Telemetry:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    events: Counter = field(init=False)
    dead_letters: Counter = field(init=False)
    dead_letter_send_failures: Counter = field(init=False)
    unreadable_batches: Counter = field(init=False)
    consumer_lag: Gauge = field(init=False)
    consumer_lag_seconds: Gauge = field(init=False)
    last_applied_timestamp: Gauge = field(init=False)
    topic_partitions: Gauge = field(init=False)
    log_restarts: Counter = field(init=False)
    records_lost: Counter = field(init=False)
    assigned_partitions: Gauge = field(init=False)
    cache_entries: Gauge = field(init=False)
    batch_apply_seconds: Histogram = field(init=False)
    batch_events: Histogram = field(init=False)
    freshness_seconds: Histogram = field(init=False)
    redis_errors: Counter = field(init=False)
    redis_reconnects: Counter = field(init=False)
    redis_up: Gauge = field(init=False)
    redis_rewinds: Counter = field(init=False)
    redis_memory: Gauge = field(init=False)
    api_request_seconds: Histogram = field(init=False)
    api_busy: Counter = field(init=False)
    live_streams: Gauge = field(init=False)
    heavy_queries: Gauge = field(init=False)
    retention_deleted_keys: Counter = field(init=False)
    retention_sweep_seconds: Gauge = field(init=False)
    retention_sweep_last_success: Gauge = field(init=False)
    worker_info: Info = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        self._input_metrics(r)
        self._progress_metrics(r)
        self._apply_metrics(r)
        self._redis_metrics(r)
        self._api_and_sweep_metrics(r)
        self.worker_info = Info("upsell_worker", "Version and settings that matter.", registry=r)

    def _input_metrics(self, r: CollectorRegistry) -> None:
        """What became of the records read: counted, duplicate, dead-lettered, unreadable."""
        self.events = Counter(
            "upsell_events",
            "Messages consumed, by topic and outcome (counted, duplicate, dead_letter, skipped).",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "upsell_dead_letters",
            "Messages sent to the dead-letter topic, by reason code.",
            ["reason"],
            registry=r,
        )
        self.dead_letter_send_failures = Counter(
            "upsell_dead_letter_send_failures",
            "Failed attempts to send dead letters to Kafka (each is retried with backoff).",
            registry=r,
        )
        self.unreadable_batches = Counter(
            "upsell_unreadable_batches",
            "Record batches no client could read (bad CRC, corrupt compression, unknown codec), "
            "dead-lettered as one offset range each and skipped.",
            ["topic"],
            registry=r,
        )

    def _progress_metrics(self, r: CollectorRegistry) -> None:
        """How far behind each owned partition is, and what its log did."""
        self.consumer_lag = Gauge(
            "upsell_consumer_lag",
            "Records between the last applied offset and the partition's high watermark, "
            "refreshed every second from the broker whether or not applies succeed.",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_lag_seconds = Gauge(
            "upsell_consumer_lag_seconds",
            "Age bound of the oldest unapplied record: 0 when caught up, else now minus the "
            "later of the last applied record's Kafka timestamp and the last time the "
            "partition was seen caught up (time since assignment before either is known).",
            ["topic", "partition"],
            registry=r,
        )
        self.last_applied_timestamp = Gauge(
            "upsell_last_applied_timestamp_seconds",
            "Unix time of the last successful apply of the partition (its assignment before).",
            ["topic", "partition"],
            registry=r,
        )
        self.topic_partitions = Gauge(
            "upsell_topic_partitions",
            "Partitions of each counted topic, as the broker's metadata reports them.",
            ["topic"],
            registry=r,
        )
        self.log_restarts = Counter(
            "upsell_log_restarts",
            "Partition logs that restarted below the stored offset (topic recreated, broker "
            "data lost): counted again from offset 0 in a new epoch.",
            ["topic"],
            registry=r,
        )
        self.records_lost = Counter(
            "upsell_records_lost",
            "Records deleted by the topic's retention before this worker read them, or before it "
            "could read them again after Redis went back in time.",
            ["topic"],
            registry=r,
        )

    def _apply_metrics(self, r: CollectorRegistry) -> None:
        """Ownership, the atomic applies and how fresh they leave the counters."""
        self.assigned_partitions = Gauge(
            "upsell_assigned_partitions", "Partitions this worker owns.", ["topic"], registry=r
        )
        self.cache_entries = Gauge(
            "upsell_cache_entries",
            "Entries in each per-shop cache of this worker (each bounded, README 'Memory').",
            ["cache"],
            registry=r,
        )
        self.batch_apply_seconds = Histogram(
            "upsell_batch_apply_seconds",
            "Time of one atomic Redis apply of a batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_events = Histogram(
            "upsell_batch_events",
            "Messages per applied batch.",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000, 50000),
            registry=r,
        )
        self.freshness_seconds = Histogram(
            "upsell_freshness_seconds",
            "Kafka message timestamp to applied in Redis.",
            buckets=_FRESHNESS_BUCKETS,
            registry=r,
        )

    def _redis_metrics(self, r: CollectorRegistry) -> None:
        """Whether Redis answers, and whether it went back in time."""
        self.redis_errors = Counter(
            "upsell_redis_errors", "Failed Redis calls, by operation.", ["operation"], registry=r
        )
        self.redis_reconnects = Counter(
            "upsell_redis_reconnects", "Times Redis came back after being unreachable.", registry=r
        )
        self.redis_up = Gauge("upsell_redis_up", "1 while Redis answers, else 0.", registry=r)
        self.redis_rewinds = Counter(
            "upsell_redis_rewinds",
            "Times Redis held older progress for a partition than this worker had written (RDB "
            "restore, lost AOF tail, failover to a lagging replica, a Cluster node's lost "
            "writes); each was repaired by reading the partition again from Redis's position.",
            ["topic"],
            registry=r,
        )

        self.redis_memory = Gauge(
            "upsell_redis_memory_bytes",
            "Redis's used_memory and maxmemory (0: no limit), read every 30 s; on a Cluster, the "
            "primary nearest its limit.",
            ["figure"],
            registry=r,
        )

    def _api_and_sweep_metrics(self, r: CollectorRegistry) -> None:
        """The HTTP API's latency, open streams and heavy queries; the retention sweep's health."""
        self.live_streams = Gauge(
            "upsell_live_streams",
            "Live (Server-Sent Events) streams this worker holds open; at "
            "UPSELL_LIVE_MAX_STREAMS one more answers 429.",
            registry=r,
        )
        self.heavy_queries = Gauge(
            "upsell_heavy_queries",
            "Queries over more than 31 days running now; at UPSELL_API_MAX_HEAVY_QUERIES one "
            "more answers 503 with Retry-After.",
            registry=r,
        )
        self.api_busy = Counter(
            "upsell_api_busy",
            "Requests answered 503 busy on purpose (every heavy-query slot taken), by route; "
            "UpsellHttp5xx leaves them out.",
            ["route"],
            registry=r,
        )
        self.api_request_seconds = Histogram(
            "upsell_api_request_seconds",
            "HTTP API request duration, by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.retention_deleted_keys = Counter(
            "upsell_retention_deleted_keys",
            "Day-scoped keys of days past the retention deleted by this worker's sweeps.",
            registry=r,
        )
        self.retention_sweep_seconds = Gauge(
            "upsell_retention_sweep_seconds",
            "Duration of this worker's last completed retention sweep.",
            registry=r,
        )
        self.retention_sweep_last_success = Gauge(
            "upsell_retention_sweep_last_success_timestamp_seconds",
            "Unix time this worker last completed its retention check (swept, or found the "
            "day's sweep done by another worker); its start time until the first check.",
            registry=r,
        )
        self.retention_sweep_last_success.set_to_current_time()

    def observe_batch(
        self,
        topic: str,
        outcome: BatchTally,
        seconds: float,
        timestamps_ms: list[int | None],
        messages: int,
    ) -> None:
        """One applied batch: outcomes per topic, apply latency, size, and freshness of its first
        and last message (Kafka timestamp to now). Lag is the LagWatch's, once a second."""
        self.batch_apply_seconds.observe(seconds)
        self.batch_events.observe(messages)
        for name, n in (
            ("counted", outcome.counted),
            ("duplicate", outcome.duplicates),
            ("dead_letter", outcome.dead_letters),
            ("skipped", outcome.skipped),
        ):
            if n:
                self.events.labels(topic, name).inc(n)
        now_ms = time.time() * 1000
        for ts in timestamps_ms:
            if ts is not None and ts > 0:
                self.freshness_seconds.observe(max(0.0, (now_ms - ts) / 1000))

    def watch_cache(self, name: str, size: Callable[[], float]) -> None:
        """Report ``size()`` as upsell_cache_entries{cache=name} at every scrape."""
        self.cache_entries.labels(name).set_function(size)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the per-partition series of a partition this worker no longer owns."""
        for gauge in (self.consumer_lag, self.consumer_lag_seconds, self.last_applied_timestamp):
            with contextlib.suppress(KeyError):
                gauge.remove(topic, str(partition))
