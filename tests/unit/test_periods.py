"""Periods and comparisons: every preset x week start, month ends, leap years, quarter edges."""

from __future__ import annotations

from datetime import date

import pytest

from stream.dates.periods import (
    Period,
    PeriodError,
    buckets,
    resolve_compare,
    resolve_period,
    shift_years,
)

D = date.fromisoformat


def period(name: str, today: str, week_start: str = "monday", **extra: str) -> Period:
    return resolve_period(
        {"period": name, **extra}, today=D(today), week_start=week_start, retention_days=800
    )


def span(p: Period) -> tuple[str, str]:
    return p.start.isoformat(), p.end.isoformat()


# today, week_start, preset -> (from, to), previous_period (from, to)
CASES = [
    # 2026-11-24 is a Tuesday
    ("2026-11-24", "monday", "today", ("2026-11-24", "2026-11-24"), ("2026-11-23", "2026-11-23")),
    (
        "2026-11-24",
        "monday",
        "yesterday",
        ("2026-11-23", "2026-11-23"),
        ("2026-11-22", "2026-11-22"),
    ),
    (
        "2026-11-24",
        "monday",
        "this_week",
        ("2026-11-23", "2026-11-24"),
        ("2026-11-16", "2026-11-17"),
    ),
    (
        "2026-11-24",
        "sunday",
        "this_week",
        ("2026-11-22", "2026-11-24"),
        ("2026-11-15", "2026-11-17"),
    ),
    (
        "2026-11-24",
        "monday",
        "last_week",
        ("2026-11-16", "2026-11-22"),
        ("2026-11-09", "2026-11-15"),
    ),
    (
        "2026-11-24",
        "sunday",
        "last_week",
        ("2026-11-15", "2026-11-21"),
        ("2026-11-08", "2026-11-14"),
    ),
    (
        "2026-11-24",
        "monday",
        "this_month",
        ("2026-11-01", "2026-11-24"),
        ("2026-10-01", "2026-10-24"),
    ),
    (
        "2026-11-24",
        "monday",
        "last_month",
        ("2026-10-01", "2026-10-31"),
        ("2026-09-01", "2026-09-30"),
    ),
    (
        "2026-11-24",
        "monday",
        "quarter_to_date",
        ("2026-10-01", "2026-11-24"),
        ("2026-07-01", "2026-08-24"),
    ),
    (
        "2026-11-24",
        "monday",
        "last_quarter",
        ("2026-07-01", "2026-09-30"),
        ("2026-04-01", "2026-06-30"),
    ),
    (
        "2026-11-24",
        "monday",
        "year_to_date",
        ("2026-01-01", "2026-11-24"),
        ("2025-01-01", "2025-11-24"),
    ),
    (
        "2026-11-24",
        "monday",
        "last_year",
        ("2025-01-01", "2025-12-31"),
        ("2024-01-01", "2024-12-31"),
    ),
    # Sunday and Monday as "today"
    (
        "2026-11-22",
        "monday",
        "this_week",
        ("2026-11-16", "2026-11-22"),
        ("2026-11-09", "2026-11-15"),
    ),
    (
        "2026-11-22",
        "sunday",
        "this_week",
        ("2026-11-22", "2026-11-22"),
        ("2026-11-15", "2026-11-15"),
    ),
    (
        "2026-11-23",
        "monday",
        "this_week",
        ("2026-11-23", "2026-11-23"),
        ("2026-11-16", "2026-11-16"),
    ),
    # month ends: Mar 31 -> Feb 1-28 (clipped); leap year Mar 31 2028 -> Feb 1-29
    (
        "2026-03-31",
        "monday",
        "this_month",
        ("2026-03-01", "2026-03-31"),
        ("2026-02-01", "2026-02-28"),
    ),
    (
        "2028-03-31",
        "monday",
        "this_month",
        ("2028-03-01", "2028-03-31"),
        ("2028-02-01", "2028-02-29"),
    ),
    (
        "2028-02-29",
        "monday",
        "this_month",
        ("2028-02-01", "2028-02-29"),
        ("2028-01-01", "2028-01-29"),
    ),
    (
        "2026-05-31",
        "monday",
        "this_month",
        ("2026-05-01", "2026-05-31"),
        ("2026-04-01", "2026-04-30"),
    ),
    # quarter edges
    # 90 elapsed days from Oct 1 end on Dec 29 (Q4 has 92 days)
    (
        "2026-03-31",
        "monday",
        "quarter_to_date",
        ("2026-01-01", "2026-03-31"),
        ("2025-10-01", "2025-12-29"),
    ),
    (
        "2026-04-01",
        "monday",
        "quarter_to_date",
        ("2026-04-01", "2026-04-01"),
        ("2026-01-01", "2026-01-01"),
    ),
    (
        "2026-04-01",
        "monday",
        "last_quarter",
        ("2026-01-01", "2026-03-31"),
        ("2025-10-01", "2025-12-31"),
    ),
    (
        "2026-09-30",
        "monday",
        "quarter_to_date",
        ("2026-07-01", "2026-09-30"),
        ("2026-04-01", "2026-06-30"),
    ),
    (
        "2026-10-01",
        "monday",
        "last_quarter",
        ("2026-07-01", "2026-09-30"),
        ("2026-04-01", "2026-06-30"),
    ),
    (
        "2026-05-31",
        "monday",
        "quarter_to_date",
        ("2026-04-01", "2026-05-31"),
        ("2026-01-01", "2026-03-02"),
    ),
    # year edges
    (
        "2027-01-01",
        "monday",
        "yesterday",
        ("2026-12-31", "2026-12-31"),
        ("2026-12-30", "2026-12-30"),
    ),
    (
        "2027-01-01",
        "sunday",
        "last_week",
        ("2026-12-20", "2026-12-26"),
        ("2026-12-13", "2026-12-19"),
    ),
    (
        "2026-12-31",
        "monday",
        "year_to_date",
        ("2026-01-01", "2026-12-31"),
        ("2025-01-01", "2025-12-31"),
    ),
    (
        "2028-12-31",
        "monday",
        "year_to_date",
        ("2028-01-01", "2028-12-31"),
        ("2027-01-01", "2027-12-31"),
    ),
    (
        "2027-01-01",
        "monday",
        "last_month",
        ("2026-12-01", "2026-12-31"),
        ("2026-11-01", "2026-11-30"),
    ),
]


@pytest.mark.parametrize(("today", "week_start", "name", "want", "previous"), CASES)
def test_presets_and_previous_period(
    today: str, week_start: str, name: str, want: tuple[str, str], previous: tuple[str, str]
) -> None:
    p = period(name, today, week_start)
    assert span(p) == want
    c = resolve_compare({"compare": "previous_period"}, p)
    assert c is not None and span(c) == previous
    assert c.name == "previous_period"


@pytest.mark.parametrize(("today", "week_start", "name", "want", "_previous"), CASES)
def test_previous_year_same_dates(
    today: str, week_start: str, name: str, want: tuple[str, str], _previous: tuple[str, str]
) -> None:
    p = period(name, today, week_start)
    c = resolve_compare({"compare": "previous_year"}, p)
    assert c is not None
    assert span(c) == (shift_years(p.start, -1).isoformat(), shift_years(p.end, -1).isoformat())


def test_feb_29_previous_year_is_feb_28() -> None:
    p = period("date", "2028-03-01", date="2028-02-29")
    c = resolve_compare({"compare": "previous_year"}, p)
    assert c is not None and span(c) == ("2027-02-28", "2027-02-28")


def test_date_and_custom_compare_with_the_days_just_before() -> None:
    p = period("custom", "2026-11-24", **{"from": "2026-11-10", "to": "2026-11-16"})
    assert span(p) == ("2026-11-10", "2026-11-16") and p.days == 7
    c = resolve_compare({"compare": "previous_period"}, p)
    assert c is not None and span(c) == ("2026-11-03", "2026-11-09")
    d = period("date", "2026-11-24", date="2026-03-01")
    c = resolve_compare({"compare": "previous_period"}, d)
    assert c is not None and span(c) == ("2026-02-28", "2026-02-28")
    c = resolve_compare(
        {"compare": "custom", "compare_from": "2025-01-01", "compare_to": "2025-01-31"}, d
    )
    assert c is not None and span(c) == ("2025-01-01", "2025-01-31")
    assert resolve_compare({}, d) is None


def test_default_period_is_today() -> None:
    assert span(
        resolve_period({}, today=D("2026-11-24"), week_start="monday", retention_days=800)
    ) == ("2026-11-24", "2026-11-24")


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"period": "decade"}, "bad_period", "period"),
        ({"period": "date"}, "bad_date", "date"),
        ({"period": "date", "date": "2026-13-01"}, "bad_date", "date"),
        ({"period": "date", "date": "26-1-1"}, "bad_date", "date"),
        ({"period": "date", "date": "1900-01-01"}, "bad_date", "date"),
        ({"period": "custom", "from": "2026-01-02"}, "bad_date", "to"),
        ({"period": "custom", "from": "2026-01-02", "to": "2026-01-01"}, "bad_range", "from"),
        ({"period": "custom", "from": "2020-01-01", "to": "2026-01-01"}, "range_too_long", "to"),
    ],
)
def test_period_errors(params: dict[str, str], code: str, param: str) -> None:
    with pytest.raises(PeriodError) as err:
        resolve_period(params, today=D("2026-11-24"), week_start="monday", retention_days=800)
    assert (err.value.code, err.value.param) == (code, param)


def test_compare_errors() -> None:
    p = period("today", "2026-11-24")
    with pytest.raises(PeriodError) as err:
        resolve_compare({"compare": "lastish"}, p)
    assert (err.value.code, err.value.param) == ("bad_compare", "compare")
    with pytest.raises(PeriodError) as err:
        resolve_compare({"compare": "custom", "compare_from": "2026-01-01"}, p)
    assert err.value.param == "compare_to"


@pytest.mark.parametrize(
    ("week_start", "want"),
    [
        (
            "monday",
            [
                ("2026-11-04", "2026-11-08"),
                ("2026-11-09", "2026-11-15"),
                ("2026-11-16", "2026-11-18"),
            ],
        ),
        (
            "sunday",
            [
                ("2026-11-04", "2026-11-07"),
                ("2026-11-08", "2026-11-14"),
                ("2026-11-15", "2026-11-18"),
            ],
        ),
    ],
)
def test_week_buckets_clipped(week_start: str, want: list[tuple[str, str]]) -> None:
    p = Period("custom", D("2026-11-04"), D("2026-11-18"))
    got = [(a.isoformat(), b.isoformat()) for a, b in buckets(p, "week", week_start)]
    assert got == want
    assert len(buckets(p, "day", week_start)) == 15
    with pytest.raises(PeriodError) as err:
        buckets(p, "hour", week_start)
    assert (err.value.code, err.value.param) == ("bad_interval", "interval")
