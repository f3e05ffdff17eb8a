"""Dates for the end-to-end tests, all derived from now: no outcome depends on the day the suite
runs. DST switches come from the zone database (zoneinfo), never written down."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def iso_instant(t: datetime) -> str:
    """``t`` as the events' ``occurred_at``: UTC, milliseconds, a ``Z``."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_day(t: datetime) -> str:
    """The ``YYYY-MM-DD`` of ``t`` in UTC: the counter day of a shop without settings."""
    return t.astimezone(UTC).date().isoformat()


def an_hour_ago() -> tuple[str, str]:
    """A recent instant, well inside the retention and before now: (``occurred_at``, its UTC
    day), from one reading of the clock so the two always agree."""
    t = datetime.now(UTC) - timedelta(hours=1)
    return iso_instant(t), utc_day(t)


def last_offset_change(zone: str, before: datetime, within_days: int = 400) -> datetime:
    """The latest instant before ``before`` at which ``zone``'s UTC offset changed (a DST
    switch), found in the zone database: a day-by-day scan, then bisection to the second."""
    tz = ZoneInfo(zone)

    def offset(ts: int) -> timedelta | None:
        return datetime.fromtimestamp(ts, tz).utcoffset()

    hi = int(before.timestamp())
    for _ in range(within_days):
        lo = hi - 86_400
        if offset(lo) != offset(hi):
            while hi - lo > 1:  # offset(lo) is the old offset, offset(hi) the new one
                mid = (lo + hi) // 2
                if offset(mid) == offset(lo):
                    lo = mid
                else:
                    hi = mid
            return datetime.fromtimestamp(hi, UTC)
        hi = lo
    raise AssertionError(f"{zone} changed its UTC offset nowhere in the {within_days} days")


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` through ``last``."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
