"""Redis-backed state: the atomic batch apply (Lua), partition claims, shop settings.

On a single Redis a batch is one script call: every shop section plus the partition checkpoint.
On Redis Cluster the sections are grouped by primary (one call per primary, all keys of a shop
share its ``{shop_id}`` tag; stream/state/cluster_apply.py) and the checkpoint follows in its own
call; per-shop progress and fences inside each call keep that exact (see docs/state.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date
from importlib.resources import files
from typing import Any

import orjson
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode

from schemas.models import ShopSettings
from stream.state import changelog as cl
from stream.state import keys, shop_list, shop_settings
from stream.state.batch import PartitionBatch
from stream.state.changelog_cluster import mark_commands, with_slot_marks
from stream.state.clients import RETRIABLE, connect, pool_busy
from stream.state.cluster_apply import NodeScript, apply_cluster
from stream.state.connection import AnyRedis
from stream.state.day_index import (
    DayIndex,
    batch_days,
    day_key_chunks,
    expired_days,
    index_commands,
    scan_and_delete,
)
from stream.state.slot_tags import slot_marker, slot_of
from stream.state.store import ApplyResult, Claim, StoreUnavailable, applied_in_turn, parse_reply

# The layout of the keys this version reads and writes. A version that changes it raises the
# number; an older worker then refuses to count (docs/operations.md, "Upgrades").
STATE_FORMAT = 1

__all__ = ["RETRIABLE", "AnyRedis", "RedisStore", "connect", "pool_busy"]

_APPLY_LUA = files("stream.state").joinpath("apply.lua").read_text()

_CLAIM_LUA = files("stream.state").joinpath("claim.lua").read_text()
_RESTART_LUA = files("stream.state").joinpath("restart_log.lua").read_text()


@contextlib.asynccontextmanager
async def unavailable_on_errors() -> AsyncIterator[None]:
    try:
        yield
    except RETRIABLE as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from exc


class RedisStore:
    """Counter and settings store over one Redis or a Redis Cluster."""

    def __init__(
        self,
        client: AnyRedis,
        cluster: bool = False,
        on_outcome: Callable[[BaseException | None], None] | None = None,
        day_index_entries: int = 100_000,
        shops_per_call: int = 2_000,
        changelog: bool = False,
        calls_in_flight: int = 0,
    ) -> None:
        self.client = client
        # every change marked for the state changelog (stream/state/changelog.py; on a Cluster,
        # in the slot of what changed: stream/state/changelog_cluster.py)
        self.changelog = changelog
        self._mark = cl.mark_script(client)
        # the restore from the changelog (stream/services/restore.py), run by the first claim
        # or the start-up, whichever comes first: the Faust engine claims before services start
        self.before_claim: Callable[[], Awaitable[object]] | None = None
        self.shops_per_call = shops_per_call  # one Redis: shops per apply-script call
        # one Redis: apply scripts sent at once (0: no limit)
        self._in_flight = asyncio.Semaphore(calls_in_flight) if calls_in_flight else None
        self.cluster = cluster
        self.on_outcome = on_outcome  # after every call: None if Redis answered, else the error
        self._apply = client.register_script(_APPLY_LUA)
        self._restart = client.register_script(_RESTART_LUA)
        self._claim = client.register_script(_CLAIM_LUA)
        self.day_index = DayIndex(day_index_entries)  # (shop, day) pairs indexed: a memo
        # Cluster: the apply script with allow-cross-slot-keys, one call per primary
        self._on_node = NodeScript(client, _APPLY_LUA) if isinstance(client, RedisCluster) else None

    # -- counters ---------------------------------------------------------------------------
    async def claim(self, topic: str, partition: int, above: int = 0) -> Claim:
        await self._restored()  # a claim reads the checkpoint: after any restore
        self.day_index.forget()  # Redis may have lost keys (this may follow an outage)
        async with self._answered():
            gen, offset, epoch = await self._claim(
                keys=[keys.partition(topic, partition)], args=[above]
            )
        return Claim(int(gen), int(offset) + 1, int(epoch))

    async def checkpoint(self, topic: str, partition: int) -> int:
        async with self._answered():
            offset = await self.client.hget(keys.partition(topic, partition), "offset")
        return int(offset) if offset is not None else -1

    async def restart_log(self, topic: str, partition: int, generation: int) -> Claim:
        """The partition's log restarted below our checkpoint (topic recreated or truncated):
        start a new epoch from offset 0. Per-shop progress is kept per epoch, so the old
        offsets stop mattering. Does nothing if another worker claimed the partition since."""
        async with self._answered():
            reply = await self._restart(keys=[keys.partition(topic, partition)], args=[generation])
        return Claim(int(reply[0]), int(reply[1]), int(reply[2]))

    async def apply(self, batch: PartitionBatch) -> ApplyResult:
        async with self._answered():
            await self._index(batch)
            if not self.cluster:
                return await self._apply_single(batch)
            assert isinstance(self.client, RedisCluster), "cluster mode takes a RedisCluster"
            per_node = self._call_on if self._on_node and self._on_node.enabled else None
            return await apply_cluster(self.client, batch, self._call, per_node)

    async def _apply_single(self, batch: PartitionBatch) -> ApplyResult:
        """One Redis: a call per ``shops_per_call`` shops, so no script holds Redis for long
        (20,000 new shops took 0.6 s in one call). Every call checks the checkpoint; the last
        moves it. Each call is exact on its own (per-shop progress), as on a cluster. No
        routing, so only the checkpoint is declared: declaring every shop's progress key cost
        the client ~1.5 us per event at 10,000 shops."""
        checkpoint_key = [keys.partition(batch.topic, batch.partition)]
        names = list(batch.sections)
        step = self.shops_per_call
        # a batch without shops (all dead-lettered) still moves the checkpoint: one call
        parts = [names[i : i + step] for i in range(0, len(names), step)] or [[]]
        return await applied_in_turn(
            self._call(batch.payload(part, advance=i == len(parts) - 1), checkpoint_key)
            for i, part in enumerate(parts)
        )

    async def _index(self, batch: PartitionBatch) -> None:
        """The batch's new (shop, day) pairs into the per-day index, before the keys exist."""
        by_day = self.day_index.missing(batch_days(batch))
        if by_day:
            async with self.client.pipeline(transaction=False) as pipe:
                index_commands(pipe, by_day)
                await pipe.execute()
            self.day_index.written(by_day)

    def _with_marks(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.changelog:
            return payload
        return with_slot_marks(payload) if self.cluster else cl.with_marks(payload)

    async def _call(self, payload: dict[str, Any], key_names: list[str]) -> ApplyResult:
        args = [orjson.dumps(self._with_marks(payload))]
        async with self._in_flight or contextlib.nullcontext():
            return parse_reply(await self._apply(keys=key_names, args=args))

    async def _call_on(
        self, node: ClusterNode, payload: dict[str, Any], first_key: str
    ) -> ApplyResult | None:
        """One call on a primary for all its shops of the batch; None: apply them per slot."""
        assert self._on_node is not None
        reply = await self._on_node(node, first_key, orjson.dumps(self._with_marks(payload)))
        return None if reply is None else parse_reply(reply)

    # -- settings and snapshots -------------------------------------------------------------
    async def write_shops(self, changes: Mapping[str, ShopSettings | None]) -> None:
        """Store each shop's settings (listed in the shop index while it has them), or delete
        them (None), in one round trip."""
        await self._restored()
        docs = {shop: shop_settings.encode(s) for shop, s in changes.items() if s is not None}
        gone = [shop for shop, s in changes.items() if s is None]
        if docs and self.cluster:  # another slot than the settings': not in their transaction
            async with self._answered():
                await self.client.zadd(keys.SHOPS_INDEX, dict.fromkeys(docs, 0), nx=True)
        async with self._answered(), self.client.pipeline(transaction=self.changelog) as pipe:
            if docs:
                pipe.hset(keys.SHOPS, mapping=docs)  # type: ignore[arg-type]
                if not self.cluster:
                    pipe.zadd(keys.SHOPS_INDEX, dict.fromkeys(docs, 0), nx=True)
            if gone:
                pipe.hdel(keys.SHOPS, *gone)
            if changes:
                await self._marked(pipe, None, [cl.field_item(keys.SHOPS, s) for s in changes])
            await pipe.execute()

    async def get_shops(self, shop_ids: list[str]) -> dict[str, ShopSettings]:
        """The settings of those of ``shop_ids`` that have any. With the changelog, read in one
        transaction with the changelog's marker (on a Cluster, the marker of their slot): a Redis
        lost under the worker is restored first. Read from an emptied Redis, every shop would
        count on UTC days, and a batch folded so but applied after the restore kept them (found
        2026-12-08: a view of a New York shop counted on the next UTC day)."""
        for _ in range(3):
            async with self._answered():
                raw, marked = await self._shops_and_marker(shop_ids)
            if marked:
                break
            await self._restored()
        else:
            raise StoreUnavailable("redis lost its state: shop settings unknown until restored")
        out: dict[str, ShopSettings] = {}
        for sid, doc in zip(shop_ids, raw, strict=True):
            if doc is not None:
                out[sid] = shop_settings.decode(sid, doc)
        return out

    async def _shops_and_marker(self, shop_ids: list[str]) -> tuple[list[Any], bool]:
        if not self.changelog:
            return await self.client.hmget(keys.SHOPS, shop_ids), True
        marker = slot_marker(slot_of(keys.SHOPS)) if self.cluster else keys.CHANGELOG_AT
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(keys.SHOPS, shop_ids)
            pipe.exists(marker)
            raw, marked = await pipe.execute()
        return raw, bool(marked)

    async def mark_shops_seen(self, shop_ids: list[str], day: int) -> None:
        """List ``shop_ids`` as seen on UTC ``day`` (days since the epoch; shop_list.py)."""
        if shop_ids:
            await self._restored()
            if self.cluster:  # the index is in another slot than the list: not in its MULTI
                async with self._answered():
                    await self.client.zadd(keys.SHOPS_INDEX, dict.fromkeys(shop_ids, 0), nx=True)
            async with self._answered(), self.client.pipeline(transaction=self.changelog) as pipe:
                shop_list.mark_commands(pipe, shop_ids, day, indexed=not self.cluster)
                await self._marked(
                    pipe, None, [cl.member_item(keys.SHOPS_ACTIVE, s) for s in shop_ids]
                )
                await pipe.execute()

    async def put_subscribers(self, shop_id: str, day: date, count: int, ttl_s: int) -> None:
        await self._restored()
        key = keys.subscribers(shop_id)
        async with self._answered(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, day.isoformat(), count)
            pipe.expire(key, ttl_s)
            await self._marked(pipe, shop_id, [cl.key_item(key)])
            await pipe.execute()

    async def _restored(self) -> None:
        """Before a write outside the apply script: a Redis lost under the worker is restored
        first (the hook checks the changelog's marker), or the restore would replace the write
        (a subscriber snapshot, a shop's settings, the shop list's day: not written again)."""
        if self.before_claim is not None:
            await self.before_claim()

    async def _marked(self, pipe: Any, shop: str | None, items: list[str]) -> None:
        """Mark ``items`` changed for the changelog in ``pipe``'s transaction (when it is on)."""
        if self.changelog and self.cluster:
            mark_commands(pipe, shop, items)
        elif self.changelog:
            names, args = cl.mark_args(shop, items)
            await self._mark(keys=names, args=args, client=pipe)

    # -- retention ---------------------------------------------------------------------------
    async def claim_sweep(self, last_day: str, ttl_s: int) -> bool:
        async with self._answered():
            return bool(await self.client.set(keys.retention_sweep(last_day), 1, nx=True, ex=ttl_s))

    async def release_sweep(self, last_day: str) -> None:
        async with self._answered():
            await self.client.delete(keys.retention_sweep(last_day))

    async def finish_sweep(self, last_day: str) -> None:
        async with self._answered():
            await self.client.set(
                keys.retention_sweep(last_day), keys.SWEEP_DONE, xx=True, keepttl=True
            )

    async def delete_days_through(self, last_day: str, chunk: int = 1_000) -> int:
        """UNLINK the day-scoped keys of the indexed days ``<= last_day`` (stream/state/
        day_index.py): the cost follows the keys deleted, not the keyspace. The first sweep of a
        deployment also scans the whole keyspace once, for keys written before the index."""
        deleted = 0
        async with self._answered():
            if not await self.client.exists(keys.RETENTION_SCANNED):
                deleted += await scan_and_delete(self.client, last_day, chunk)
                await self.client.set(keys.RETENTION_SCANNED, last_day)
            for day in await expired_days(self.client, last_day):
                async for names in day_key_chunks(self.client, day, chunk):
                    deleted += int(await self.client.unlink(*names))
                await self.client.unlink(keys.day_shops(day))
                await self.client.zrem(keys.DAYS, day)
        return deleted

    async def trim_shops(self, today: int, first_kept_day: int) -> int:
        """The shop list follows the retention (shop_list.py): returns how many shops left it."""
        async with self._answered():
            await shop_list.fold_legacy(self.client, today)
            return await shop_list.trim(self.client, first_kept_day)

    async def fold_legacy_shops(self, day: int) -> int:
        """Fold a set ``us:shops:seen`` of an earlier version into the shop list (once)."""
        async with self._answered():
            return await shop_list.fold_legacy(self.client, day)

    async def state_format(self, mine: int) -> int:
        """The state format Redis holds, recording ``mine`` when it holds none."""
        async with self._answered():
            await self.client.set(keys.STATE_FORMAT, mine, nx=True)
            stored = await self.client.get(keys.STATE_FORMAT)
        return int(stored) if stored is not None else mine

    async def ping(self) -> bool:
        try:
            async with self._answered():
                return bool(await self.client.ping())
        except StoreUnavailable:
            return False

    @contextlib.asynccontextmanager
    async def _answered(self) -> AsyncIterator[None]:
        """Errors after which a retry can help become StoreUnavailable; ``on_outcome`` learns
        whether Redis answered (an error reply is an answer)."""
        try:
            async with unavailable_on_errors():
                yield
        except StoreUnavailable as exc:
            if self.on_outcome is not None:
                self.on_outcome(exc)
            raise
        if self.on_outcome is not None:
            self.on_outcome(None)
