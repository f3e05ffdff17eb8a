"""Prometheus metrics of a collector process, in a registry of its own.

Labels are bounded: route templates, statuses, the six kinds (plus ``unknown``), reason codes
before their ``:``, the two limiters. Never a shop, a key or an address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

_PRODUCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class CollectorTelemetry:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    requests: Counter = field(init=False)
    accepted: Counter = field(init=False)
    rejected: Counter = field(init=False)
    rate_limited: Counter = field(init=False)
    produce_seconds: Histogram = field(init=False)
    info: Info = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "upsell_collector_requests",
            "HTTP requests, by route template and status.",
            ["route", "status"],
            registry=r,
        )
        self.accepted = Counter(
            "upsell_collector_events_accepted",
            "Events acknowledged by the broker (or dropped as already accepted), by kind and "
            "outcome (produced, duplicate).",
            ["kind", "outcome"],
            registry=r,
        )
        self.rejected = Counter(
            "upsell_collector_events_rejected",
            "Events refused, by kind and reason code (the part before ':').",
            ["kind", "reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "upsell_collector_rate_limited",
            "Requests answered 429, by limiter (key, address).",
            ["limit"],
            registry=r,
        )
        self.produce_seconds = Histogram(
            "upsell_collector_produce_seconds",
            "Time from the first send of a request's events to the broker's last acknowledgement.",
            buckets=_PRODUCE_BUCKETS,
            registry=r,
        )
        # Always present, so the alerts find the collectors among the targets
        # (UpsellCollectorDown, UpsellCollectorsAbsent).
        self.info = Info("upsell_collector", "The collector's version.", registry=r)
