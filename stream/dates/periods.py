"""Dashboard periods and comparisons, in shop-local dates. Pure: the caller supplies ``today``.

Presets: today, yesterday, this_week, last_week, this_month, last_month, quarter_to_date,
last_quarter, year_to_date, last_year; ``date`` (one day); ``custom`` (inclusive range).
Weeks start on the shop's week start; quarters are calendar quarters.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

PRESETS = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "quarter_to_date",
    "last_quarter",
    "year_to_date",
    "last_year",
)
KINDS = (*PRESETS, "date", "custom")
COMPARES = ("previous_period", "previous_year", "custom")
INTERVALS = ("day", "week")
_TO_DATE = {
    "today": "day",
    "this_week": "week",
    "this_month": "month",
    "quarter_to_date": "quarter",
    "year_to_date": "year",
}
_COMPLETE = {
    "yesterday": "day",
    "last_week": "week",
    "last_month": "month",
    "last_quarter": "quarter",
    "last_year": "year",
}


class PeriodError(ValueError):
    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def to_json(self, timezone: str) -> dict[str, str]:
        return {
            "name": self.name,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "timezone": timezone,
        }


# -- calendar units ---------------------------------------------------------------------------
def week_start_of(d: date, week_start: str) -> date:
    first = 6 if week_start == "sunday" else 0  # date.weekday(): Monday 0 .. Sunday 6
    return d - timedelta(days=(d.weekday() - first) % 7)


def _unit_start(d: date, unit: str, week_start: str) -> date:
    if unit == "day":
        return d
    if unit == "week":
        return week_start_of(d, week_start)
    if unit == "month":
        return d.replace(day=1)
    if unit == "quarter":
        return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    return date(d.year, 1, 1)


def _unit_end(start: date, unit: str) -> date:
    if unit == "day":
        return start
    if unit == "week":
        return start + timedelta(days=6)
    if unit == "month":
        return start.replace(day=calendar.monthrange(start.year, start.month)[1])
    if unit == "quarter":
        last_month = start.month + 2
        return date(start.year, last_month, calendar.monthrange(start.year, last_month)[1])
    return date(start.year, 12, 31)


def _previous_unit_start(start: date, unit: str) -> date:
    if unit == "day":
        return start - timedelta(days=1)
    if unit == "week":
        return start - timedelta(days=7)
    if unit == "month":
        return (start - timedelta(days=1)).replace(day=1)
    if unit == "quarter":
        prev = start - timedelta(days=1)
        return date(prev.year, 3 * ((prev.month - 1) // 3) + 1, 1)
    return date(start.year - 1, 1, 1)


def shift_years(d: date, years: int) -> date:
    """The same calendar date ``years`` later (negative: earlier); Feb 29 becomes Feb 28."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


# -- parsing ----------------------------------------------------------------------------------
def parse_date(raw: str | None, param: str) -> date:
    if raw is None or raw == "":
        raise PeriodError("bad_date", param, f"{param} is required (YYYY-MM-DD)")
    if len(raw) != 10:
        raise PeriodError("bad_date", param, f"{param} must be YYYY-MM-DD")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise PeriodError("bad_date", param, f"{param} is not a valid date: {raw[:20]!r}") from None
    if not 1970 <= value.year <= 9998:
        raise PeriodError("bad_date", param, f"{param} must be between 1970 and 9998")
    return value


def _range(params: Mapping[str, str], lo: str, hi: str, name: str, retention_days: int) -> Period:
    start, end = parse_date(params.get(lo), lo), parse_date(params.get(hi), hi)
    if start > end:
        raise PeriodError("bad_range", lo, f"{lo} must not be after {hi}")
    if (end - start).days + 1 > retention_days:
        raise PeriodError("range_too_long", hi, f"a range may span at most {retention_days} days")
    return Period(name, start, end)


def resolve_period(
    params: Mapping[str, str], *, today: date, week_start: str, retention_days: int
) -> Period:
    name = params.get("period") or "today"
    if name not in KINDS:
        raise PeriodError(
            "bad_period", "period", f"unknown period {name[:40]!r}; one of " + ", ".join(KINDS)
        )
    if name == "date":
        d = parse_date(params.get("date"), "date")
        return Period(name, d, d)
    if name == "custom":
        return _range(params, "from", "to", name, retention_days)
    if name in _TO_DATE:
        return Period(name, _unit_start(today, _TO_DATE[name], week_start), today)
    unit = _COMPLETE[name]
    start = _previous_unit_start(_unit_start(today, unit, week_start), unit)
    return Period(name, start, _unit_end(start, unit))


def resolve_compare(
    params: Mapping[str, str],
    period: Period,
    *,
    week_start: str = "monday",
    retention_days: int = 800,
) -> Period | None:
    mode = params.get("compare") or ""
    if not mode:
        return None
    if mode not in COMPARES:
        raise PeriodError(
            "bad_compare",
            "compare",
            f"unknown compare {mode[:40]!r}; one of " + ", ".join(COMPARES),
        )
    if mode == "custom":
        return _range(params, "compare_from", "compare_to", mode, retention_days)
    if mode == "previous_year":
        return Period(mode, shift_years(period.start, -1), shift_years(period.end, -1))
    if period.name in _TO_DATE:
        unit = _TO_DATE[period.name]
        start = _previous_unit_start(period.start, unit)
        end = min(start + timedelta(days=period.days - 1), _unit_end(start, unit))
        return Period(mode, start, end)
    if period.name in _COMPLETE:
        unit = _COMPLETE[period.name]
        start = _previous_unit_start(period.start, unit)
        return Period(mode, start, _unit_end(start, unit))
    return Period(
        mode, period.start - timedelta(days=period.days), period.start - timedelta(days=1)
    )


def buckets(period: Period, interval: str, week_start: str) -> list[tuple[date, date]]:
    if interval not in INTERVALS:
        raise PeriodError("bad_interval", "interval", "interval must be day or week")
    if interval == "day":
        return [(d, d) for d in period.dates()]
    out = []
    start = period.start
    while start <= period.end:
        end = min(week_start_of(start, week_start) + timedelta(days=6), period.end)
        out.append((start, end))
        start = end + timedelta(days=1)
    return out
