"""Metrics of the state changelog and of restores (README, "Metrics"; alerts in
deploy/prometheus/alerts.yml), declared beside the worker's :mod:`stream.telemetry` and
registered on its registry; like it, they only declare metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ChangelogMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        self.lag_records = Gauge(
            "upsell_changelog_lag_records",
            "Shops and global items changed in Redis and not yet acknowledged by the changelog "
            "topic (the flusher's last look; 0 when it is up to date).",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "upsell_changelog_lag_seconds",
            "Seconds since the start of the last flush that left nothing behind: how old the "
            "oldest change that only Redis holds can be.",
            registry=r,
        )
        self.records = Counter(
            "upsell_changelog_records_total",
            "Records the broker acknowledged on the changelog topic.",
            registry=r,
        )
        self.bytes = Counter(
            "upsell_changelog_bytes_total",
            "Key and value bytes of the records acknowledged on the changelog topic.",
            registry=r,
        )
        self.flush_failures = Counter(
            "upsell_changelog_flush_failures_total",
            "Flushes that failed (Redis or the broker); the marks stay and the next one retries.",
            registry=r,
        )
        self.restore_records = Counter(
            "upsell_restore_records_total",
            "Changelog records written into Redis by restores.",
            registry=r,
        )
        self.restore_running = Gauge(
            "upsell_restore_running", "1 while this worker restores Redis.", registry=r
        )
        self.restores = Counter(
            "upsell_restores_total", "Restores of Redis from the changelog finished.", registry=r
        )
        self.redis_lost = Counter(
            "upsell_redis_lost_total",
            "Times this running worker found Redis without the changelog's marker (emptied or "
            "replaced under it); a restore follows each.",
            registry=r,
        )
