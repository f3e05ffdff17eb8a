"""The Redis side of the state changelog on a Redis Cluster (docs/state.md, "Changelog", "On
Redis Cluster"); stream/state/changelog.py is the one-Redis side, whose interface this keeps.

A change and its marks must be written in one atomic call, and a Cluster call touches one node
(a script with ``allow-cross-slot-keys``) or one slot (a transaction). So what a mark updates
lives in the slot of the state it marks (stream/state/slot_tags.py): a shop's marks in
``us:{S}:cl`` as on one Redis, the shop in its slot's index ``us:cl:shops:{T}``, a global key's
marks (a checkpoint, a write key, the settings hash) in its slot's ``us:cl:g:{T}``, and every slot
holds a marker ``us:cl:at:{T}`` that the apply script checks for its shops: a primary replaced by
an empty one lost its slots' markers with their state, so nothing is counted into it.

The flusher finds the dirty slots with one script call per primary over the slots it serves
(``changelog_slots.lua``), reads and clears them with a call per primary, and before it moves
the flush marker checks that no slot lost its marker since the flush began.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode

from stream.state import keys
from stream.state.changelog import (
    _READ_LUA,
    GLOBAL,
    ChangelogState,
    DirtyShop,
    Item,
    parse_read,
)
from stream.state.cluster_apply import NodeScript
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
from stream.state.store import StoreUnavailable

_SLOTS_LUA = files("stream.state").joinpath("changelog_slots.lua").read_text()
_CLEAR_SLOTS_LUA = files("stream.state").joinpath("changelog_clear_slots.lua").read_text()
_PREFIXES = (f"{keys.CHANGELOG_AT}:", f"{keys.CHANGELOG_SHOPS}:", f"{keys.CHANGELOG_GLOBAL}:")


def shop_slot(shop: str) -> int:
    return slot_of(keys.progress(shop))


def with_slot_marks(payload: dict[str, Any]) -> dict[str, Any]:
    """``changelog.with_marks`` on a Cluster: each shop's index and marker are its slot's, the
    checkpoint's marks and marker its slot's."""
    payload["cl"] = True
    ck = payload.get("ck")
    if ck is not None:
        slot = slot_of(ck)
        payload["cg"], payload["ca"] = global_marks(slot), slot_marker(slot)
    for section in payload["s"]:
        shop = section["id"]
        slot = shop_slot(shop)
        section["dk"] = keys.changelog_dirty(shop)
        section["cl"], section["ca"] = shops_index(slot), slot_marker(slot)
    return payload


def mark_commands(pipe: Any, shop: str | None, items: list[str]) -> None:
    """Queue the marks of ``items`` on a Cluster transaction (``changelog_mark.lua`` there):
    the version is a token unique to the call, since a transaction cannot use a reply."""
    if not items:
        return
    if shop is None:
        dirty = global_marks(slot_of(item_key(items[0])))
    else:
        dirty = keys.changelog_dirty(shop)
    pipe.hincrby(dirty, "#", 1)
    pipe.hset(dirty, mapping=dict.fromkeys(items, "t" + secrets.token_hex(8)))
    if shop is not None:
        pipe.hincrby(shops_index(shop_slot(shop)), shop, 1)


def by_node(client: RedisCluster, slots: Any) -> list[tuple[ClusterNode, list[int]]]:
    """``slots`` grouped by the primary that serves them, as the client's map says."""
    groups: dict[str, tuple[ClusterNode, list[int]]] = {}
    nodes = client.nodes_manager
    for slot in slots:
        node = nodes.get_node_from_slot(slot)
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (node, [])
        group[1].append(slot)
    return list(groups.values())


class ClusterChangelogState(ChangelogState):
    """Marks, reads and clears the changelog's dirty state on a Redis Cluster."""

    def __init__(self, client: RedisCluster) -> None:
        super().__init__(client)
        self.cluster: RedisCluster = client
        self.lease_key = lease()  # in the slot of us:cl:at (the marker script reads both)
        self._slots = NodeScript(client, _SLOTS_LUA)
        self._read_on = NodeScript(client, _READ_LUA)
        self._clear_on = NodeScript(client, _CLEAR_SLOTS_LUA)
        self._global_slots: list[Any] = []  # found by marker(), read by read_global()
        self._groups: tuple[object, list[tuple[ClusterNode, list[str]]]] = (None, [])
        # what this flush found and cleared: pending() without another pass over every slot
        self._found = [0, 0]  # shops, global items
        self._cleared = [0, 0]

    async def _on(self, script: NodeScript, node: ClusterNode, argv: list[Any]) -> Any:
        reply = await script.call(node, None, *argv)
        if reply is None:  # the slot map changed (a failover, a resharding): the next flush,
            # on the new map (a script's refusal is no MOVED: the client would not learn it)
            await self.cluster.nodes_manager.initialize()
            raise StoreUnavailable("the Cluster's slot map changed under the changelog flush")
        return reply

    async def scan(self, mode: str, value: int = 0) -> tuple[int, list[Any]]:
        """Every primary's slots: how many lost their marker, and what ``mode`` asks for (or
        the markers written: changelog_slots.lua)."""
        if not self.cluster.nodes_manager.slots_cache:  # a client not used yet
            await self.cluster.initialize()
        replies = await asyncio.gather(
            *(
                self._on(self._slots, node, [mode, value, *_PREFIXES, *names])
                for node, names in self._tags_by_node()
            )
        )
        return sum(int(r[0]) for r in replies), [r[1] for r in replies]

    def _tags_by_node(self) -> list[tuple[ClusterNode, list[str]]]:
        """Each primary with the tags of its slots, kept while the client's slot map is the
        same object (redis-py builds a new one when it learns of a change)."""
        current = self.cluster.nodes_manager.slots_cache
        if self._groups[0] is not current:
            names = tags()
            groups = by_node(self.cluster, range(SLOTS))
            self._groups = (current, [(n, [names[s] for s in slots]) for n, slots in groups])
        return self._groups[1]

    async def marker(self) -> int | None:
        """The newest flush marker, None when Redis or any slot lost it. The same pass finds
        the slots with global marks, which ``read_global`` then reads (a slot marked after it
        waits for the next flush: its checkpoint is not sent, the older one stays, safe)."""
        got = await super().marker()
        if got is None:
            return None
        missing, self._global_slots = await self.scan("g")
        return None if missing else got

    async def next_marker(self, expected: int, owner: str) -> int | None:
        if (await self.scan("m"))[0]:  # a primary emptied since the flush began
            return None
        return await super().next_marker(expected, owner)

    async def dirty_shops(self, chunk: int = 500) -> AsyncIterator[list[tuple[str, bytes]]]:
        """The dirty shops, ``chunk`` at a time, each chunk on one primary."""
        _, per_node = await self.scan("s")
        self._found[0] = self._cleared[0] = 0
        for found in per_node:
            shops = [
                (index[i].decode(), index[i + 1])
                for _tag, index in zip(found[::2], found[1::2], strict=True)
                for i in range(0, len(index), 2)
            ]
            self._found[0] += len(shops)
            for i in range(0, len(shops), chunk):
                yield shops[i : i + chunk]

    async def read(self, shops: list[tuple[str, bytes]]) -> tuple[int, list[DirtyShop]]:
        args: list[Any] = [len(shops)]
        for shop, _ in shops:
            args += [shop, keys.changelog_dirty(shop)]
        node = self.cluster.nodes_manager.get_node_from_slot(shop_slot(shops[0][0]))
        return parse_read(shops, await self._on(self._read_on, node, args))

    async def read_global(self) -> DirtyShop:
        """The global marks of every slot that has some, as one DirtyShop (``clear`` finds
        each item's slot again from its key)."""
        per_node, self._global_slots = self._global_slots or (await self.scan("g"))[1], []
        merged = DirtyShop(GLOBAL, b"")
        for found in per_node:
            if not found:
                continue
            names = [f"{_PREFIXES[2]}{{{t.decode()}}}" for t in found]
            args: list[Any] = [len(names)]
            for name in names:
                args += [GLOBAL, name]
            node = self.cluster.nodes_manager.get_node_from_slot(slot_of(names[0]))
            reply = await self._on(self._read_on, node, args)
            _, got = parse_read([(GLOBAL, b"")] * len(names), reply)
            for d in got:
                merged.items += d.items
        self._found[1], self._cleared[1] = len(merged.items), 0
        return merged

    async def clear(self, shops: list[DirtyShop]) -> int:
        entries: dict[str, tuple[ClusterNode, list[Any], list[int]]] = {}
        nodes = self.cluster.nodes_manager
        for d in shops:
            for slot, entry in _entries(d):
                node = nodes.get_node_from_slot(slot)
                _, args, count = entries.setdefault(node.name, (node, [], [0]))
                args += entry
                count[0] += 1
        cleared = [0, 0]
        for node, args, count in entries.values():
            marks, shops_cleared = await self._on(self._clear_on, node, [count[0], *args])
            cleared[0] += int(marks)
            cleared[1] += int(shops_cleared)
        if all(d.shop == GLOBAL for d in shops):
            self._cleared[1] += cleared[0]
        else:
            self._cleared[0] += cleared[1]
        return cleared[0]

    async def marked(self) -> int:
        """Shops and slots of global items marked now (two passes over every slot)."""
        _, shops = await self.scan("s")
        _, glob = await self.scan("g")
        return sum(len(f) // 2 for f in shops) + sum(len(f) for f in glob)

    async def pending(self) -> int:
        """What the last flush found marked and left so (changed meanwhile): on one Redis the
        whole index is counted, here that would be one more pass over every slot."""
        return max(0, self._found[0] - self._cleared[0]) + max(0, self._found[1] - self._cleared[1])


def _entries(d: DirtyShop) -> list[tuple[int, list[Any]]]:
    """(slot, the clear script's arguments) for a shop, or per slot for the global marks."""
    if d.shop != GLOBAL:
        slot = shop_slot(d.shop)
        args: list[Any] = [shops_index(slot), d.shop, keys.changelog_dirty(d.shop), d.seen]
        return [(slot, [*args, len(d.items), *_pairs(d.items)])]
    by_slot: dict[int, list[Item]] = {}
    for it in d.items:
        by_slot.setdefault(slot_of(item_key(it.item.decode())), []).append(it)
    return [
        (slot, ["", GLOBAL, global_marks(slot), b"", len(items), *_pairs(items)])
        for slot, items in by_slot.items()
    ]


def _pairs(items: list[Item]) -> list[bytes]:
    return [x for it in items for x in (it.item, it.version)]


async def stored_marker(client: Any) -> int | None:
    """Redis's flush marker (``us:cl:at``); on a Cluster None too when a slot lost its own."""
    raw = await client.get(keys.CHANGELOG_AT)
    if raw is None:
        return None
    if isinstance(client, RedisCluster) and (await ClusterChangelogState(client).scan("m"))[0]:
        return None
    return int(raw)


async def first_marker(client: Any) -> None:
    """A first deployment: the marker 0 (flush from there); on a Cluster every slot's too."""
    if isinstance(client, RedisCluster):
        await ClusterChangelogState(client).scan("x", 0)
    await client.set(keys.CHANGELOG_AT, 0, nx=True)
