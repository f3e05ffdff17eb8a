"""Writes the changelog's records back into Redis (docs/state.md, "Changelog"; the reading and
the decision are stream/services/restore.py).

Records are applied in the log's order, one pipeline per fetch: every record holds an absolute
value and all records of a key sit in one partition, so the last one written wins, as it does
after compaction. What the changelog does not carry is derived at the end: the per-day index
(from the day keys), the shop list's index (from the shops seen and with settings), the state
format, and each checkpoint's generation is raised to the highest fence its shops hold, so the next
claim is above them. State past the retention (a day older than the retention sweep keeps, a
dedupe marker or snapshot whose TTL ended, a ledger entry older than the retention) is skipped.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date
from importlib.resources import files
from typing import Any

import orjson
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode

from stream.state import keys
from stream.state.changelog import MARKER_KEY
from stream.state.changelog_cluster import ClusterChangelogState
from stream.state.cluster_apply import NodeScript
from stream.state.slot_tags import slot_of

_WRITE_LUA = files("stream.state").joinpath("changelog_write.lua").read_text()
_DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass
class RestoreWriter:
    client: Any
    now_ms: int
    retention_days: int
    state_format: int
    records: int = 0
    skipped: int = 0
    marker: int = 0
    _fences: dict[tuple[str, int], int] = field(default_factory=dict)
    _days: dict[str, set[str]] = field(default_factory=dict)
    _listed: set[str] = field(default_factory=set)
    _gens: dict[str, int] = field(default_factory=dict)  # checkpoint key -> its generation
    _script: Any = None

    async def wipe(self) -> int:
        """Delete the service's state (an older Redis is replaced, not merged); the restore lock
        stays."""
        deleted = 0
        if isinstance(self.client, RedisCluster):
            # first every slot's marker: the running workers' applies on the primaries that kept
            # their state then write nothing (a key they created behind the SCAN would survive)
            await ClusterChangelogState(self.client).scan("d")
        names: list[bytes] = []
        async for name in self.client.scan_iter(match=f"{keys.PREFIX}:*", count=1000):
            if name.decode() != keys.RESTORE_LOCK:
                names.append(name)
            if len(names) >= 1000:
                deleted += await self._unlink(names)
                names = []
        return deleted + await self._unlink(names)

    async def _unlink(self, names: list[bytes]) -> int:
        """One round trip for ``names`` (one per key took 9 s for 22,000 keys on a Cluster)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.execute_command("UNLINK", name)  # a Cluster pipeline's unlink() is not queued
            return sum(int(n) for n in await pipe.execute())

    async def write(self, records: list[tuple[bytes, bytes | None]], chunk: int = 2_000) -> None:
        """Write records in the log's order: one script call per ``chunk`` of them."""
        if self._script is None:
            if isinstance(self.client, RedisCluster):
                self._script = NodeScript(self.client, _WRITE_LUA)
            else:
                self._script = self.client.register_script(_WRITE_LUA)
        for i in range(0, len(records), chunk):
            ops = _Commands()
            for key, value in records[i : i + chunk]:
                self._one(ops, key, value)
            if not ops.args:
                continue
            if isinstance(self._script, NodeScript):
                await self._on_nodes(ops)
            else:
                await self._script(keys=[], args=ops.args)

    async def _on_nodes(self, ops: _Commands) -> None:
        """A Cluster: each primary's commands in one script call on it (a node that refuses,
        its slots moved meanwhile, gets them through the client's routing instead)."""
        assert isinstance(self._script, NodeScript)
        for node, commands in ops.by_node(self.client).items():
            flat = [x for c in commands for x in (len(c), *c)]
            if await self._script.call(node, None, *flat) is None:
                async with self.client.pipeline(transaction=False) as pipe:
                    for c in commands:
                        pipe.execute_command(*c)
                    await pipe.execute()

    def _one(self, pipe: Any, item: bytes, value: bytes | None) -> None:
        if item == MARKER_KEY:
            if value is not None:
                self.marker = max(self.marker, int(orjson.loads(value)["at"]))
            return
        self.records += 1
        kind, rest = item[:1], item[1:]
        doc = orjson.loads(value) if value is not None else None
        if kind == b"k":
            self._key(pipe, rest.decode(), doc)
        elif kind in (b"z", b"f"):
            name, _, member = rest.partition(b"\0")
            self._member(pipe, kind, name.decode(), member, doc)

    def _key(self, pipe: Any, name: str, doc: dict[str, Any] | None) -> None:
        pipe.delete(name)
        expires = doc.get("x") if doc else None
        day = keys.day_of(name)
        if doc is None or (expires is not None and expires <= self.now_ms) or self._expired(day):
            self.skipped += doc is not None
            return
        if "h" in doc:
            pipe.hset(name, mapping=doc["h"])
            self._derive(name, doc["h"], day)
        elif "l" in doc:
            if not doc["l"]:
                return
            pipe.rpush(name, *(base64.b64decode(v) for v in doc["l"]))
        else:
            pipe.set(name, base64.b64decode(doc["b"]))
        if expires is not None:
            pipe.pexpireat(name, expires)

    def _member(
        self, pipe: Any, kind: bytes, name: str, member: bytes, doc: dict[str, Any] | None
    ) -> None:
        if kind == b"f":
            if doc is None:
                pipe.hdel(name, member)
            else:
                pipe.hset(name, member, doc["f"])
                if name == keys.SHOPS:
                    self._listed.add(member.decode())
            return
        if doc is None:
            pipe.zrem(name, member)
        elif name == keys.SHOPS_ACTIVE:  # the shop list: member -> the UTC day last seen
            pipe.zadd(name, {member: float(doc["z"])})
            self._listed.add(member.decode())
        elif float(doc["z"]) >= self.now_ms - self.retention_days * _DAY_MS:
            pipe.zadd(name, {member: float(doc["z"])})
            if doc.get("x") is not None:
                pipe.pexpireat(name, doc["x"])
        else:
            self.skipped += 1

    def _expired(self, day: str | None) -> bool:
        if day is None:
            return False
        age = self.now_ms // _DAY_MS - (date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL)
        return age > self.retention_days + 2

    def _derive(self, name: str, fields: dict[str, str], day: str | None) -> None:
        """Remember what the index, the shop list and the generations need from a hash."""
        shop = keys.shop_of(name) or ""
        if day is not None and shop:
            self._days.setdefault(day, set()).add(shop)
        elif name.startswith(keys.PREFIX + ":part:"):
            self._gens[name] = int(fields.get("gen", "0"))
        elif shop and name == keys.progress(shop):
            for f, v in fields.items():
                if f.startswith("f:"):
                    topic, _, part = f[2:].rpartition(":")
                    tp = (topic, int(part))
                    self._fences[tp] = max(self._fences.get(tp, 0), int(v))

    async def finish(self) -> None:
        """The derived state, the format and the marker, once every record is written."""
        async with self.client.pipeline(transaction=False) as pipe:
            for day, shops in self._days.items():
                pipe.zadd(keys.DAYS, {day: 0})
                pipe.sadd(keys.day_shops(day), *shops)
            if self._listed:
                pipe.zadd(keys.SHOPS_INDEX, dict.fromkeys(self._listed, 0))
            # the next claim must be above every fence its shops hold
            for (topic, part), fence in self._fences.items():
                name = keys.partition(topic, part)
                pipe.hset(name, "gen", max(fence, self._gens.get(name, 0)))
            pipe.set(keys.STATE_FORMAT, self.state_format)
            await pipe.execute()
        if isinstance(self.client, RedisCluster):  # every slot holds its state again
            await ClusterChangelogState(self.client).scan("w", self.marker)
        await self.client.set(keys.CHANGELOG_AT, self.marker)


class _Commands:
    """The few pipeline methods the writer uses, recorded as the write script's arguments."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self.commands: list[tuple[Any, ...]] = []

    def _add(self, *command: Any) -> None:
        self.args.append(len(command))
        self.args.extend(command)
        self.commands.append(command)

    def by_node(self, client: RedisCluster) -> dict[ClusterNode, list[tuple[Any, ...]]]:
        """The commands grouped by the primary that serves their key (the second word)."""
        out: dict[ClusterNode, list[tuple[Any, ...]]] = {}
        nodes = client.nodes_manager
        for c in self.commands:
            out.setdefault(nodes.get_node_from_slot(slot_of(c[1])), []).append(c)
        return out

    def delete(self, name: str) -> None:
        self._add("DEL", name)

    def set(self, name: str, value: bytes) -> None:
        self._add("SET", name, value)

    def pexpireat(self, name: str, at_ms: int) -> None:
        self._add("PEXPIREAT", name, at_ms)

    def hset(self, name: str, key: Any = None, value: Any = None, mapping: Any = None) -> None:
        pairs = [key, value] if mapping is None else [x for kv in mapping.items() for x in kv]
        self._add("HSET", name, *pairs)

    def hdel(self, name: str, member: Any) -> None:
        self._add("HDEL", name, member)

    def rpush(self, name: str, *values: bytes) -> None:
        self._add("RPUSH", name, *values)

    def zadd(self, name: str, mapping: dict[Any, float]) -> None:
        (member, score), *_ = mapping.items()
        self._add("ZADD", name, repr(score), member)

    def zrem(self, name: str, member: Any) -> None:
        self._add("ZREM", name, member)
