"""The contract's times as text: RFC 3339 read (``Z`` or an offset), UTC written with ``Z``.

Every ``occurred_at`` and every time the service writes (dead letters' ``failed_at``, the
ledger, the API's last-event time, the collector's ``received_at``) goes through here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+\-]\d{2}:\d{2})")
MAX_CHARS = 40  # the longest timestamp text read


def canonical_utc(value: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.mmmZ``, the shapes almost every producer
    sends: the regex can be skipped, ``fromisoformat`` still rejects anything but digits."""
    n = len(value)
    return (
        (n == 20 or (n == 24 and value[19] == "."))
        and value[-1] == "Z"
        and value[4] == "-"
        and value[7] == "-"
        and value[10] == "T"
        and value[13] == ":"
        and value[16] == ":"
    )


def read_rfc3339(value: str) -> datetime:
    """An RFC 3339 time with ``Z`` or an offset; raises ValueError saying what is wrong."""
    if canonical_utc(value):
        return datetime.fromisoformat(value)
    if len(value) > MAX_CHARS or not _RFC3339.fullmatch(value):
        raise ValueError("expected RFC 3339 with Z or an offset")
    return datetime.fromisoformat(value.upper() if value[-1] in "zZ" else value)


def parse_timestamp(value: str) -> datetime | None:
    """An ``occurred_at`` text as the validator reads it, or None where it rejects it."""
    try:
        return read_rfc3339(value)
    except ValueError:
        return None


def utc_text(t: datetime, timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """``t`` in UTC as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (or to the second)."""
    return t.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
