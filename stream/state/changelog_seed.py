"""Seed the state changelog with the state Redis held before it was switched on (docs/state.md,
"Changelog"): an upgrade from a version without a changelog leaves state that no change marks
until it changes, and a shop counted long ago may never change again. A worker that finds the
changelog without a flush marker sets ``us:cl:seed`` (a SCAN cursor); the flusher then walks the
keyspace in bounded steps, marking every piece of state as a change would, and sends no flush
marker until the walk is done (so no restore trusts a changelog that holds part of the state)."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import RedisCluster

from stream.state import keys
from stream.state.changelog import field_item, key_item, mark_args, mark_script, member_item
from stream.state.changelog_cluster import by_node, mark_commands
from stream.state.slot_tags import SLOTS

SEED = f"{keys.PREFIX}:cl:seed"  # the walk's SCAN cursor; "done" once it ended
DONE = b"done"
_GLOBAL_KEYS = (f"{keys.PREFIX}:part:", f"{keys.PREFIX}:wk:")  # whole keys, global marks


class ChangelogSeed:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._mark = mark_script(client)
        self.marked = 0  # items marked by this process

    async def start(self) -> None:
        """The changelog holds no flush: walk Redis once (a walk under way continues)."""
        await self.client.set(SEED, "0", nx=True)

    async def run(self, budget_s: float = 0.2, scan: int = 1000) -> bool:
        """Steps of the walk for about ``budget_s``; True while it is not done."""
        raw = await self.client.get(SEED)
        if raw is None or raw == DONE:
            return False
        cursor = raw.decode()
        deadline = time.monotonic() + budget_s
        while True:
            cursor, names = await self._scan(cursor, scan)
            await self._mark_keys([n.decode() for n in names])
            if cursor == "0":
                await self.client.set(SEED, DONE)
                return False
            await self.client.set(SEED, cursor)
            if time.monotonic() >= deadline:
                return True

    async def _scan(self, cursor: str, count: int) -> tuple[str, list[bytes]]:
        """A SCAN step: the next cursor ("0" at the end) and the keys found. On a Cluster the
        cursor is "<primary>:<its cursor>", the primaries taken in the order of their first
        slot (a resharding during the walk can move keys past it: walk again with
        ``upsell-stream restore --seed``)."""
        match = f"{keys.PREFIX}:*"
        if not isinstance(self.client, RedisCluster):
            at, names = await self.client.scan(int(cursor), match=match, count=count)
            return str(at), names
        primaries = sorted(by_node(self.client, range(SLOTS)), key=lambda g: g[1][0])
        node_at, _, node_cursor = cursor.partition(":")
        i = int(node_at) if node_cursor else 0
        if i >= len(primaries):
            return "0", []
        node = primaries[i][0]
        found: Any = await self.client.scan(
            int(node_cursor or 0), match=match, count=count, target_nodes=node
        )
        cursors, names = found  # redis-py's cluster scan: ({node name: cursor}, keys)
        at = int(cursors[node.name])
        if at == 0:
            return ("0" if i + 1 >= len(primaries) else f"{i + 1}:0"), names
        return f"{i}:{at}", names

    async def _mark_keys(self, names: list[str]) -> None:
        if not names:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for n in names:
                pipe.type(n)
            types = [t.decode() if isinstance(t, bytes) else t for t in await pipe.execute()]
        marks: dict[str | None, list[str]] = {}
        for name, typ in zip(names, types, strict=True):
            for shop, item in await self._items(name, typ):
                marks.setdefault(shop, []).append(item)
        async with self.client.pipeline(transaction=False) as pipe:
            for shop, items in marks.items():
                if isinstance(self.client, RedisCluster):  # marks in each key's slot
                    for part in ([i] for i in items) if shop is None else [items]:
                        mark_commands(pipe, shop, part)
                    continue
                for i in range(0, len(items), 1000):
                    names_, args = mark_args(shop, items[i : i + 1000])
                    await self._mark(keys=names_, args=args, client=pipe)
            await pipe.execute()
        self.marked += sum(len(v) for v in marks.values())

    async def _items(self, name: str, typ: str) -> list[tuple[str | None, str]]:
        """(shop or None for the global marks, item) of one key, as a change would mark it."""
        shop = keys.shop_of(name)
        if shop is not None:
            if name.endswith(":cl") or ":col:" in name:  # marks; the collector's 15-min claims
                return []
            if typ in ("hash", "string", "list"):  # a list: the shop's erasure records
                return [(shop, key_item(name))]
            if typ == "zset":  # the ledger: one item per entry
                return [(shop, member_item(name, m)) for m in await self._members(name)]
            return []
        if name.startswith(_GLOBAL_KEYS) and typ in ("hash", "string"):
            return [(None, key_item(name))]
        if name == keys.SHOPS:
            fields = [f.decode() async for f, _ in self.client.hscan_iter(name, count=1000)]
            return [(None, field_item(name, f)) for f in fields]
        if name == keys.SHOPS_ACTIVE:
            return [(None, member_item(name, m)) for m in await self._members(name)]
        return []  # derived by a restore (day index, shop index, format) or bookkeeping

    async def _members(self, name: str) -> list[str]:
        return [m.decode() async for m, _ in self.client.zscan_iter(name, count=1000)]
