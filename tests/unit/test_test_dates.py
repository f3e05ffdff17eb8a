"""The end-to-end tests find DST switches in the zone database: checked here at fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.dates import iso_instant, last_offset_change


@pytest.mark.parametrize(
    ("zone", "before", "switch"),
    [
        (
            "America/New_York",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2026, 11, 1, 6, tzinfo=UTC),
        ),
        (
            "America/New_York",
            datetime(2027, 3, 15, tzinfo=UTC),
            datetime(2027, 3, 14, 7, tzinfo=UTC),
        ),
        ("America/New_York", datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 3, 8, 7, tzinfo=UTC)),
        ("Europe/Berlin", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)),
        (
            "Australia/Sydney",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2026, 10, 3, 16, tzinfo=UTC),
        ),
    ],
)
def test_the_latest_switch_before_an_instant(zone: str, before: datetime, switch: datetime) -> None:
    assert last_offset_change(zone, before) == switch


def test_a_zone_without_dst_has_no_switch() -> None:
    with pytest.raises(AssertionError, match="Asia/Kolkata"):
        last_offset_change("Asia/Kolkata", datetime(2026, 12, 1, tzinfo=UTC))


def test_instants_are_utc_with_milliseconds() -> None:
    assert (
        iso_instant(datetime(2026, 11, 1, 6, 0, 0, 123456, tzinfo=UTC))
        == "2026-11-01T06:00:00.123Z"
    )
