"""Shop-local day assignment: DST switches, odd offsets, the last millisecond of a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.dates.days import DayResolver, day_bounds_utc, local_date


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("tz", "instant", "day"),
    [
        # America/New_York 2026: DST starts Mar 8 02:00 EST (07:00Z), ends Nov 1 02:00 EDT (06:00Z)
        ("America/New_York", "2026-03-08T04:59:59.999Z", "2026-03-07"),
        ("America/New_York", "2026-03-08T05:00:00Z", "2026-03-08"),
        ("America/New_York", "2026-03-09T03:59:59Z", "2026-03-08"),  # 23:59:59 EDT
        ("America/New_York", "2026-03-09T04:00:00Z", "2026-03-09"),
        ("America/New_York", "2026-11-01T05:30:00Z", "2026-11-01"),  # 01:30 EDT, first pass
        ("America/New_York", "2026-11-01T06:30:00Z", "2026-11-01"),  # 01:30 EST, repeated hour
        ("America/New_York", "2026-11-02T04:59:59.999Z", "2026-11-01"),  # 23:59:59.999 EST
        ("America/New_York", "2026-11-02T05:00:00Z", "2026-11-02"),
        # Europe/Berlin 2026: Mar 29 01:00Z (+1 -> +2), Oct 25 01:00Z (+2 -> +1)
        ("Europe/Berlin", "2026-03-28T22:59:59.999Z", "2026-03-28"),
        ("Europe/Berlin", "2026-03-28T23:00:00Z", "2026-03-29"),
        ("Europe/Berlin", "2026-03-29T21:59:59Z", "2026-03-29"),
        ("Europe/Berlin", "2026-03-29T22:00:00Z", "2026-03-30"),
        ("Europe/Berlin", "2026-10-24T21:59:59.999Z", "2026-10-24"),
        ("Europe/Berlin", "2026-10-24T22:00:00Z", "2026-10-25"),
        ("Europe/Berlin", "2026-10-25T22:59:59.999Z", "2026-10-25"),
        ("Europe/Berlin", "2026-10-25T23:00:00Z", "2026-10-26"),
        # Pacific/Chatham: +13:45 in its summer, +12:45 in winter (switches Apr 5 / Sep 27 2026)
        ("Pacific/Chatham", "2026-01-15T10:14:59.999Z", "2026-01-15"),
        ("Pacific/Chatham", "2026-01-15T10:15:00Z", "2026-01-16"),
        ("Pacific/Chatham", "2026-06-15T11:14:59.999Z", "2026-06-15"),
        ("Pacific/Chatham", "2026-06-15T11:15:00Z", "2026-06-16"),
        # Asia/Kolkata: +05:30, no DST
        ("Asia/Kolkata", "2026-11-24T18:29:59.999Z", "2026-11-24"),
        ("Asia/Kolkata", "2026-11-24T18:30:00Z", "2026-11-25"),
        ("UTC", "2026-12-31T23:59:59.999Z", "2026-12-31"),
        ("Unknown/Zone", "2026-12-31T23:59:59.999Z", "2026-12-31"),  # unknown -> UTC
    ],
)
def test_day_of(tz: str, instant: str, day: str) -> None:
    resolver = DayResolver()
    assert resolver.day_of(tz, utc(instant)) == day
    assert resolver.day_of(tz, utc(instant)) == day  # cached path agrees


def test_input_offset_does_not_matter() -> None:
    resolver = DayResolver()
    # 23:59:59.999 in Kolkata given with its own offset; New York shop sees 13:29:59.999 EST
    moment = datetime.fromisoformat("2026-11-24T23:59:59.999+05:30")
    assert resolver.day_of("Asia/Kolkata", moment) == "2026-11-24"
    assert resolver.day_of("America/New_York", moment) == "2026-11-24"
    assert resolver.day_of("Pacific/Chatham", moment) == "2026-11-25"


def test_day_bounds_have_23_and_25_hours() -> None:
    start, end = day_bounds_utc("America/New_York", date(2026, 3, 8))
    assert end - start == timedelta(hours=23)
    start, end = day_bounds_utc("America/New_York", date(2026, 11, 1))
    assert end - start == timedelta(hours=25)
    assert start == utc("2026-11-01T04:00:00Z")


def test_today_differs_by_zone() -> None:
    at = utc("2026-11-24T02:00:00Z")
    assert local_date("UTC", at) == date(2026, 11, 24)
    assert local_date("America/New_York", at) == date(2026, 11, 23)


_SHARED = DayResolver()
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Kiritimati",
]


@settings(max_examples=400, deadline=None)
@given(
    seconds=st.integers(min_value=0, max_value=int(datetime(2100, 1, 1).timestamp())),
    millis=st.integers(0, 999),
    tz=st.sampled_from(ZONES),
)
def test_property_matches_astimezone(seconds: int, millis: int, tz: str) -> None:
    instant = datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
    expected = instant.astimezone(ZoneInfo(tz)).date().isoformat()
    assert _SHARED.day_of(tz, instant) == expected  # one resolver: exercises its caches
