"""The Redis side of the state changelog (docs/state.md, "Changelog").

Every change to state is marked dirty in the same Redis call that makes it: the apply script
marks the keys and ledger entries of a shop in the shop's hash ``us:{S}:cl`` (item -> version)
and the shop in ``us:cl:shops``; the few writes outside it (subscriber snapshots, settings,
write keys) go through ``changelog_mark.lua`` in their transaction. The flusher
(stream/services/changelog_flusher.py) reads marks and values together (one script call per
chunk of shops), has the broker acknowledge them, then clears the marks that did not change
since (``changelog_clear.lua``). A record carries an absolute value, never a delta.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import orjson

from stream.state import keys

_LUA = files("stream.state")
_READ_LUA = _LUA.joinpath("changelog_read.lua").read_text()
_CLEAR_LUA = _LUA.joinpath("changelog_clear.lua").read_text()
_MARK_LUA = _LUA.joinpath("changelog_mark.lua").read_text()
_MARKER_LUA = _LUA.joinpath("changelog_marker.lua").read_text()

MARKER_KEY = b"__at"  # the flush marker record: {"at": epoch ms}, the last record of a flush
GLOBAL = ""  # the "shop" of the global hash (checkpoints, settings, write keys)


def key_item(key: str) -> str:
    """The mark (and changelog record key) of a whole Redis key."""
    return "k" + key


def member_item(key: str, member: str) -> str:
    """The mark of one member of a sorted set (the shop list's last-seen days)."""
    return f"z{key}\0{member}"


def field_item(key: str, name: str) -> str:
    """The mark of one field of a shared hash (a shop's settings in ``us:shops``)."""
    return f"f{key}\0{name}"


@dataclass(slots=True)
class Item:
    """One change read with its value: ``value`` is the record's value, None a tombstone."""

    item: bytes
    version: bytes
    value: bytes | None


@dataclass(slots=True)
class DirtyShop:
    shop: str  # GLOBAL for the global hash
    seen: bytes  # the index version read before the items (b"" for the global hash)
    items: list[Item] = field(default_factory=list)


def encode_value(kind: str, ttl_ms: int, value: Any, now_ms: int) -> bytes | None:
    """The record value of an item read by changelog_read.lua (None: the state is gone)."""
    if value is None or kind == "n":
        return None
    expires = now_ms + ttl_ms if ttl_ms >= 0 else None
    if kind == "h":
        pairs = {value[i].decode(): value[i + 1].decode() for i in range(0, len(value), 2)}
        return orjson.dumps({"h": pairs, "x": expires})
    if kind == "s":
        return orjson.dumps({"b": base64.b64encode(value).decode(), "x": expires})
    if kind == "l":  # a list (a shop's erasure records), its elements in order
        return orjson.dumps({"l": [base64.b64encode(v).decode() for v in value], "x": expires})
    if kind == "z":  # a sorted set's member: its score, and the set's expiry
        return orjson.dumps({"z": value.decode(), "x": expires})
    return orjson.dumps({"f": value.decode()})


def _dirty_key(shop: str) -> str:
    """The hash of ``shop``'s marks (the global hash for GLOBAL)."""
    return keys.CHANGELOG_GLOBAL if shop == GLOBAL else keys.changelog_dirty(shop)


def partition_of(shop: str, partitions: int) -> int:
    """Changelog partition of a shop's records: partition 0 holds the global records and the
    flush markers, the shops share the others (all of a shop's records in one partition, so
    one record batch carries a shop's whole flush)."""
    if partitions <= 1 or shop == GLOBAL:
        return 0
    return 1 + zlib.crc32(shop.encode()) % (partitions - 1)


def parse_read(shops: list[tuple[str, bytes]], reply: Any) -> tuple[int, list[DirtyShop]]:
    """Redis's time (ms) and the DirtyShops of a ``changelog_read.lua`` reply."""
    now = int(reply[0])
    out = []
    for (shop, seen), (_, raw_items) in zip(shops, reply[1:], strict=True):
        d = DirtyShop(shop, seen)
        for item, version, kind, ttl, value in raw_items:
            d.items.append(Item(item, version, encode_value(kind.decode(), ttl, value, now)))
        out.append(d)
    return now, out


class ChangelogState:
    """Marks, reads and clears the changelog's dirty state in one Redis (a Cluster:
    stream/state/changelog_cluster.py)."""

    lease_key = keys.CHANGELOG_LEASE  # the flusher's lease

    def __init__(self, client: Any) -> None:
        self.client = client
        self._read = client.register_script(_READ_LUA)
        self._clear = client.register_script(_CLEAR_LUA)
        self._marker = client.register_script(_MARKER_LUA)

    async def dirty_shops(self, chunk: int = 500) -> AsyncIterator[list[tuple[str, bytes]]]:
        """The shops marked dirty with their index version, ``chunk`` at a time (HSCAN: every
        shop marked for the whole scan is listed)."""
        cursor = 0
        while True:
            cursor, found = await self.client.hscan(keys.CHANGELOG_SHOPS, cursor, count=chunk)
            if found:
                yield [(k.decode(), v) for k, v in found.items()]
            if cursor == 0:
                return

    async def read(self, shops: list[tuple[str, bytes]]) -> tuple[int, list[DirtyShop]]:
        """Redis's time (ms) and the marked items of ``shops`` with their values, atomically."""
        args: list[Any] = [len(shops)]
        for shop, _ in shops:
            args += [shop, _dirty_key(shop)]
        return parse_read(shops, await self._read(keys=[], args=args))

    async def read_global(self) -> DirtyShop:
        _, (d,) = await self.read([(GLOBAL, b"")])
        return d

    async def clear(self, shops: list[DirtyShop]) -> int:
        """Clear the marks of ``shops`` the broker acknowledged, unless changed since."""
        if not shops:
            return 0
        args: list[Any] = [keys.CHANGELOG_SHOPS, len(shops)]
        for d in shops:
            args += [d.shop, _dirty_key(d.shop), d.seen, len(d.items)]
            for it in d.items:
                args += [it.item, it.version]
        return int(await self._clear(keys=[], args=args))

    async def next_marker(self, expected: int, owner: str) -> int | None:
        """The next flush marker, set in Redis; None if Redis changed under the flush (its
        marker is no longer ``expected`` or ``owner`` lost the lease: emptied, restored)."""
        got = await self._marker(keys=[keys.CHANGELOG_AT, self.lease_key], args=[expected, owner])
        return None if got is None else int(got)

    async def marker(self) -> int | None:
        raw = await self.client.get(keys.CHANGELOG_AT)
        return None if raw is None else int(raw)

    async def lease(self, owner: str, ttl_ms: int) -> bool:
        """Hold (or take) the flusher's lease: one flusher at a time, or an older snapshot sent
        late could overwrite a newer one in the changelog."""
        got = await self.client.set(self.lease_key, owner, nx=True, px=ttl_ms)
        if got:
            return True
        holder = await self.client.get(self.lease_key)
        if holder is not None and holder.decode() == owner:
            await self.client.pexpire(self.lease_key, ttl_ms)
            return True
        return False

    async def pending(self) -> int:
        """Shops and global items with changes not yet in the changelog."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.CHANGELOG_SHOPS)
            pipe.hlen(keys.CHANGELOG_GLOBAL)
            shops, items = await pipe.execute()
        return int(shops) + max(0, int(items) - 1)


def mark_script(client: Any) -> Any:
    """``changelog_mark.lua`` registered on ``client`` (call it with ``client=pipe``)."""
    return client.register_script(_MARK_LUA)


def mark_args(shop: str | None, items: list[str]) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of a mark: a shop's items, or global items (``shop`` None)."""
    if shop is None:
        return [keys.CHANGELOG_GLOBAL], ["", "", *items]
    return [keys.changelog_dirty(shop)], [keys.CHANGELOG_SHOPS, shop, *items]


def with_marks(payload: dict[str, Any]) -> dict[str, Any]:
    """An apply payload (stream/state/batch.py) that has the script mark what it changes."""
    payload["cl"], payload["cg"] = keys.CHANGELOG_SHOPS, keys.CHANGELOG_GLOBAL
    payload["ca"] = keys.CHANGELOG_AT  # no marker: Redis lost its state, the script writes nothing
    for section in payload["s"]:
        section["dk"] = keys.changelog_dirty(section["id"])
    return payload
