"""The changelog's pure parts: record values (absolute, expiry as a time, tombstones), the
partition of a shop's records, and what a restore skips as past the retention."""

from __future__ import annotations

import orjson

from stream.state.changelog import GLOBAL, encode_value, partition_of
from stream.state.changelog_restore import RestoreWriter

NOW = 1_796_000_000_000  # epoch ms


def test_values_are_absolute_with_the_expiry_as_a_time() -> None:
    hashed = encode_value("h", -1, [b"v\x1fg", b"12", b"r:USD", b"900"], NOW)
    assert hashed is not None
    assert orjson.loads(hashed) == {"h": {"v\x1fg": "12", "r:USD": "900"}, "x": None}
    marker = encode_value("s", 5_000, b"1", NOW)
    assert marker is not None and orjson.loads(marker) == {"b": "MQ==", "x": NOW + 5_000}
    member = encode_value("z", 60_000, b"1795000000000", NOW)
    assert member is not None and orjson.loads(member) == {"z": "1795000000000", "x": NOW + 60_000}


def test_a_key_gone_is_a_tombstone() -> None:
    assert encode_value("n", -1, None, NOW) is None
    assert encode_value("z", -2, None, NOW) is None
    assert encode_value("f", -1, None, NOW) is None


def test_a_shop_keeps_one_partition_and_partition_0_holds_the_global_records() -> None:
    parts = {partition_of(f"shop-{i}", 8) for i in range(200)}
    assert parts == set(range(1, 8))
    assert partition_of("shop-1", 8) == partition_of("shop-1", 8)
    assert partition_of(GLOBAL, 8) == 0 and partition_of("shop-1", 1) == 0


def test_a_restore_skips_days_past_the_retention_sweep() -> None:
    w = RestoreWriter(client=None, now_ms=NOW, retention_days=800, state_format=1)
    today = NOW // 86_400_000
    from datetime import date, timedelta

    day = date(1970, 1, 1) + timedelta(days=today)
    assert not w._expired((day - timedelta(days=802)).isoformat())
    assert w._expired((day - timedelta(days=803)).isoformat())
    assert not w._expired(None)
