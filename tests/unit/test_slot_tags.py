"""The changelog's per-slot keys on a Cluster (stream/state/slot_tags.py) land in the slot they
are named for, as Redis (and redis-py) hash them."""

from __future__ import annotations

from redis.crc import key_slot

from stream.state import keys
from stream.state.slot_tags import (
    SLOTS,
    global_marks,
    item_key,
    lease,
    shops_index,
    slot_marker,
    slot_of,
    tags,
)


def test_every_slot_has_a_tag_of_its_own() -> None:
    found = tags()
    assert len(found) == SLOTS and len(set(found)) == SLOTS
    assert max(len(t) for t in found) <= 4
    assert all(key_slot(("{" + t + "}").encode()) == s for s, t in enumerate(found))


def test_the_per_slot_keys_share_the_slot_of_what_they_guard() -> None:
    shop = "shop-ny"
    slot = slot_of(keys.progress(shop))
    assert slot == key_slot(keys.progress(shop).encode())
    for name in (shops_index(slot), global_marks(slot), slot_marker(slot)):
        assert key_slot(name.encode()) == slot
    assert key_slot(lease().encode()) == key_slot(keys.CHANGELOG_AT.encode())
    checkpoint = keys.partition("upsell.banner-views", 3)
    assert slot_of(checkpoint) == key_slot(checkpoint.encode())
    assert slot_of("us:{}:x") == key_slot(b"us:{}:x")  # an empty tag hashes the whole name


def test_an_item_names_its_key() -> None:
    assert item_key("kus:{a}:day:2026-12-01") == "us:{a}:day:2026-12-01"
    assert item_key("zus:{a}:ledger\0m1") == "us:{a}:ledger"
    assert item_key("fus:shops\0shop-1") == "us:shops"
