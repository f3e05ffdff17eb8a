"""Which shop-local day an instant belongs to (DST-aware), fast enough for every event.

:class:`DayResolver` caches each zone's UTC offset per 15-minute UTC bucket and computes the
date arithmetically; when the offset changes inside a bucket (a transition) it falls back to
an exact ``astimezone``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.zones import zone

_BUCKET_S = 900
_DAY_S = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAX_CACHE = 100_000
_UNKNOWN: Any = object()  # not cached yet


def local_date(timezone: str, instant: datetime) -> date:
    """The local date of an aware ``instant`` in ``timezone`` (exact, unhurried)."""
    return instant.astimezone(zone(timezone)).date()


def day_bounds_utc(timezone: str, day: date) -> tuple[datetime, datetime]:
    """UTC start of local ``day`` and of the day after (a local day may last 23 or 25 hours)."""
    tz = zone(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


class DayResolver:
    """``day_of(tz, instant) -> 'YYYY-MM-DD'``, cached per (zone, 15-minute bucket)."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, int], int | None] = {}
        self._dates: dict[int, str] = {}

    def day_of(self, timezone: str, occurred_at: datetime) -> str:
        return self.day_of_epoch(timezone, occurred_at.timestamp(), occurred_at)

    def day_of_epoch(self, timezone: str, epoch: float, occurred_at: datetime) -> str:
        """As :meth:`day_of`, for a caller that already has ``occurred_at.timestamp()``."""
        bucket = int(epoch // _BUCKET_S)
        key = (timezone, bucket)
        offsets = self._offsets
        offset = offsets.get(key, _UNKNOWN)  # one lookup (None is a cached transition)
        if offset is _UNKNOWN:
            if len(offsets) > _MAX_CACHE:
                offsets.clear()
            offset = offsets[key] = self._bucket_offset(timezone, bucket)
        if offset is None:  # a transition inside this bucket: be exact
            return local_date(timezone, occurred_at).isoformat()
        days = int((epoch + offset) // _DAY_S)
        text = self._dates.get(days)
        if text is None:
            if len(self._dates) > _MAX_CACHE:
                self._dates.clear()
            text = self._dates[days] = date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
        return text

    @staticmethod
    def _bucket_offset(timezone: str, bucket: int) -> int | None:
        tz = zone(timezone)
        start = datetime.fromtimestamp(bucket * _BUCKET_S, UTC)
        end = datetime.fromtimestamp((bucket + 1) * _BUCKET_S - 0.001, UTC)
        first, last = start.astimezone(tz).utcoffset(), end.astimezone(tz).utcoffset()
        if first != last or first is None:
            return None
        return int(first.total_seconds())
