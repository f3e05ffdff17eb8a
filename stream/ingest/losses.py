"""What the Ingestor reports lost or gone back: records Kafka no longer has to read (metric,
/readyz's ``records_lost``, an error line) and Redis going back in time (metric, error line)."""

from __future__ import annotations

import logging

from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class Losses:
    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        # "topic[p]" -> records Redis lost that Kafka no longer had to read again (/readyz)
        self.records_lost: dict[str, int] = {}

    def lost_to_retention(self, topic: str, partition: int, first: int, log_start: int) -> None:
        """Offsets ``first`` .. ``log_start - 1`` were to be read but Kafka no longer has them
        (retention deleted them): count them in ``upsell_records_lost_total``, in /readyz's
        ``records_lost`` and in an error line."""
        lost = log_start - first
        if lost <= 0:
            return
        name = f"{topic}[{partition}]"
        self.records_lost[name] = self.records_lost.get(name, 0) + lost
        self._telemetry.records_lost.labels(topic).inc(lost)
        log.error(
            "%s: events %d..%d were deleted by retention before they were read (%d records "
            "lost); reading on from %d",
            name,
            first,
            log_start - 1,
            lost,
            log_start,
        )

    def rewound(
        self, topic: str, partition: int, written: int, resume: int, shops: int = 0
    ) -> None:
        """Redis holds older progress than this worker wrote (``written``, its checkpoint): the
        partition is read again from ``resume``."""
        self._telemetry.redis_rewinds.labels(topic).inc()
        where = f"the progress of {shops} shops" if shops else "the partition checkpoint"
        log.error(
            "%s[%d]: Redis went back in time: %s is older than what this worker wrote (checkpoint "
            "%d); reading the partition again from offset %d",
            topic,
            partition,
            where,
            written,
            resume,
        )
