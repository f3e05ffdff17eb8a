"""A hash tag for each of Redis Cluster's 16,384 slots, and the changelog's per-slot keys
(docs/state.md, "Changelog", "On Redis Cluster").

A Cluster script or transaction touches the keys of one node (one slot for a transaction), so
the changelog's bookkeeping that a change must update atomically (the index of dirty shops, the
marks of a global key, the marker that says the slot still holds its state) lives in the slot
of the state it guards: ``us:cl:shops:{T}``, ``us:cl:g:{T}``, ``us:cl:at:{T}`` where ``T`` is a
tag whose CRC16 falls in that slot. The tags are found once, on first use, by trying short
base-36 strings in order (87,573 tried, 0.37 s here; none longer than 4 characters).
"""

from __future__ import annotations

import binascii
from functools import cache

from stream.state import keys

SLOTS = 16_384
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def slot_of(name: str) -> int:
    """The slot of a key, as Redis (and redis-py's ``key_slot``) computes it."""
    raw = name.encode()
    start = raw.find(b"{")
    if start > -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return binascii.crc_hqx(raw, 0) % SLOTS


@cache
def tags() -> tuple[str, ...]:
    """A short tag per slot: ``slot_of("{" + tags()[s] + "}") == s``."""
    found: list[str | None] = [None] * SLOTS
    missing, i = SLOTS, 0
    while missing:
        tag, n = "", i
        while True:
            tag = _ALPHABET[n % 36] + tag
            n //= 36
            if n == 0:
                break
        slot = binascii.crc_hqx(tag.encode(), 0) % SLOTS
        if found[slot] is None:
            found[slot] = tag
            missing -= 1
        i += 1
    return tuple(t for t in found if t is not None)


def shops_index(slot: int) -> str:
    """The dirty shops of ``slot``: hash shop -> a version bumped by every change."""
    return f"{keys.CHANGELOG_SHOPS}:{{{tags()[slot]}}}"


def global_marks(slot: int) -> str:
    """The marks of the global keys of ``slot`` (checkpoints, settings, write keys)."""
    return f"{keys.CHANGELOG_GLOBAL}:{{{tags()[slot]}}}"


def slot_marker(slot: int) -> str:
    """Exists while ``slot`` holds its state (set by a restore or a first deployment)."""
    return f"{keys.CHANGELOG_AT}:{{{tags()[slot]}}}"


def lease() -> str:
    """The flusher's lease on a Cluster: in the slot of ``us:cl:at``, so the marker script
    checks both in one call."""
    return f"{keys.CHANGELOG_LEASE}:{{{tags()[slot_of(keys.CHANGELOG_AT)]}}}"


def item_key(item: str) -> str:
    """The Redis key a mark's item is about (``k<key>``, ``z<key>\\0<member>``, ``f<key>\\0…``)."""
    return item[1:].split("\0", 1)[0]
