"""Odd records for the poison tests: every size from 0 bytes to the producer's request limit,
binary and odd bytes, among valid views whose totals the tests read back over HTTP."""

from __future__ import annotations

import random
from datetime import datetime

import orjson

# The producer's default request limit is 1 MiB (the broker takes more): a record of this many
# bytes still fits in one request with its key and the record overhead.
LARGEST = 1024 * 1024 - 4096
SIZES = (0, 1, 2, 100, 4095, 65_535, 65_536, 65_537, 150_000, 524_288, LARGEST)


def view(shop: str, n: int, at: datetime) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"{shop}-{n}",
            "shop_id": shop,
            "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "group_id": "g",
            "variation_id": "ab"[n % 2],
        }
    )


def odd_values(rng: random.Random, sizes: tuple[int, ...] = SIZES) -> list[bytes | None]:
    """Random bytes of each size, JSON-looking padding, odd encodings, and a tombstone."""
    out: list[bytes | None] = [rng.randbytes(size) for size in sizes]
    out += [b'{"pad": "' + b"x" * (size - 11) + b'"}' for size in sizes if size > 11]
    out += [
        None,
        b"\x00" * 1000,
        b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
        '{"shop_id": "\u00e9"}'.encode("utf-16"),
        b"\xff\xfe\xfd" * 50_000,
        ("\U0001f600" * 40_000).encode(),  # valid UTF-8, 160 KB, cut mid-character when bounded
    ]
    return out


def interleaved(
    shop: str, at: datetime, odd: list[bytes | None], valid_between: int, seed: int
) -> tuple[list[tuple[bytes, bytes | None]], int]:
    """(key, value) pairs: ``valid_between`` views of ``shop`` before, between and after the
    odd values (in a seeded order); returns them and the number of valid views."""
    shuffled = list(odd)
    random.Random(seed).shuffle(shuffled)
    items: list[tuple[bytes, bytes | None]] = []
    for value in [*shuffled, b""]:
        items += [(shop.encode(), view(shop, len(items) + i, at)) for i in range(valid_between)]
        items.append((shop.encode(), value))
    items.pop()  # the sentinel after the last run of valid views
    return items, valid_between * (len(odd) + 1)
