"""Which shop-local days are past the retention: pure date arithmetic, no Redis.

Counter keys carry no TTL (an ``EXPIREAT`` on every new key was a quarter of the apply script's
time with many shops); the retention sweep (stream/retention_sweep.py) deletes the day-scoped
keys of expired days instead. The rule is the one the TTLs had: the keys of day ``D`` live until
00:00 UTC of ``D + retention + 2`` days (the 2 days of slack cover every time zone and events
that arrive up to the retention limit).
"""

from __future__ import annotations

from datetime import date, timedelta

from stream.state import keys

_DAY_SECONDS = 86_400
SLACK_DAYS = 2
_EPOCH = date(1970, 1, 1)


def last_expired_day(now_s: float, retention_days: int) -> str:
    """The newest day ``D`` (``YYYY-MM-DD``) whose keys are past the retention at ``now_s``:
    every day ``<= D`` may be deleted, every later day is kept."""
    today = _EPOCH + timedelta(days=int(now_s // _DAY_SECONDS))
    return (today - timedelta(days=retention_days + SLACK_DAYS)).isoformat()


def shops_first_kept_day(now_s: float, retention_days: int) -> int:
    """The oldest UTC day (days since the epoch) a shop may have last been seen on and stay in
    the shop list (stream/state/shop_list.py): one day after its last expired day, so every
    shop-local day of it (up to a day ahead of UTC) has been deleted when it leaves."""
    return int(now_s // _DAY_SECONDS) - retention_days - SLACK_DAYS


def is_expired(day: str, last_expired: str) -> bool:
    """ISO dates compare as strings."""
    return day <= last_expired


def is_expired_key(name: str, last_expired: str) -> bool:
    """A day-scoped key (``keys.DAY_KINDS``) of a day ``<= last_expired``: the sweep deletes it."""
    day = keys.day_of(name)
    return day is not None and is_expired(day, last_expired)
