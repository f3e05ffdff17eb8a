"""Redis Cluster: one apply-script call per primary per batch, not one per hash slot.

Every per-shop key carries its ``{shop_id}`` hash tag, so with 10,000 shops nearly every shop
of a batch has a slot of its own, and one call per slot was one call per shop (~470 calls per
2,500-event batch on the live shape). Since Redis 7.0 a script that declares the flag
``allow-cross-slot-keys`` may touch keys of several slots, as long as its node serves them all;
so the shops of a batch are grouped by the primary that serves their slot and each primary gets
one call, atomic on that node like any script. Each call still carries, for each of its shops,
the counters together with the progress that guards them (docs/state.md, "Exactly once").

Keys in a script call must all be served by the node it runs on. The slot map the client holds
can be stale (a resharding, a failover): Redis then refuses the call, before the script runs
(``MOVED``, ``ASK``, ``TRYAGAIN``) or at the first non-local key, which the script reaches in
its check phase (each shop's progress hash, read before any write). The caller then applies
those shops per slot, as before this module existed. A Redis older than 7.0 does not know the
flag: the first call says so and this version of the script is not used again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from redis import exceptions as rx
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot

from stream.state import keys
from stream.state.batch import PartitionBatch
from stream.state.store import ApplyResult, applied_in_turn

log = logging.getLogger(__name__)

CROSS_SLOT = "#!lua flags=allow-cross-slot-keys\n"

# The apply call routed by its declared keys (one slot) / on a given primary (None: refused).
SlotCall = Callable[[dict[str, Any], list[str]], Awaitable[ApplyResult]]
NodeCall = Callable[[ClusterNode, dict[str, Any], str], Awaitable[ApplyResult | None]]

_REFUSED = (rx.MovedError, rx.AskError, rx.TryAgainError, rx.ClusterCrossSlotError)


def routing_refused(exc: rx.ResponseError) -> bool:
    """Redis refused the call because a key is not served by that node (nothing was written)."""
    return isinstance(exc, _REFUSED) or "non local key" in str(exc)


class NodeScript:
    """The apply script with ``allow-cross-slot-keys``, run on one chosen primary."""

    def __init__(self, client: RedisCluster, script: str) -> None:
        self.client = client
        self.text = CROSS_SLOT + script
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()
        self.enabled = True

    async def __call__(self, node: ClusterNode, first_key: str, payload: bytes) -> Any:
        """The script's reply, or None when the node refused the call for routing (or does not
        take the script): the caller then applies per slot."""
        return await self.call(node, first_key, payload)

    async def call(self, node: ClusterNode, first_key: str | None, *argv: Any) -> Any:
        """The script on ``node`` with ``argv`` (and one declared key, if any); None as above."""
        declared = () if first_key is None else (first_key,)
        args = ("EVALSHA", self.sha, len(declared), *declared, *argv)
        try:
            return await self._routed(node, args)
        except rx.NoScriptError:
            pass
        try:
            await self.client.execute_command("SCRIPT LOAD", self.text, target_nodes=node)
        except rx.ResponseError as exc:  # before Redis 7.0: no script flags
            log.warning("Redis refused the cross-slot apply script (%s): one call per slot", exc)
            self.enabled = False
            return None
        return await self._routed(node, args)

    async def _routed(self, node: ClusterNode, args: tuple[Any, ...]) -> Any:
        try:
            return await self.client.execute_command(*args, target_nodes=node)
        except rx.NoScriptError:
            raise
        except rx.ResponseError as exc:
            if routing_refused(exc):
                return None
            raise


def by_node(client: RedisCluster, shops: Iterable[str]) -> list[tuple[ClusterNode, list[str]]]:
    """The shops grouped by the primary that serves their slot, as the client's map says."""
    groups: dict[str, tuple[ClusterNode, list[str]]] = {}
    nodes = client.nodes_manager
    for shop in shops:
        node = nodes.get_node_from_slot(key_slot(keys.progress(shop).encode()))
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (node, [])
        group[1].append(shop)
    return list(groups.values())


def by_slot(shops: Iterable[str]) -> list[list[str]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for shop in shops:
        groups[key_slot(keys.progress(shop).encode())].append(shop)
    return list(groups.values())


async def apply_cluster(
    client: RedisCluster,
    batch: PartitionBatch,
    per_slot: SlotCall,
    per_node: NodeCall | None,
) -> ApplyResult:
    """The batch's shop sections, one call per primary (``per_node``; per slot when it is None
    or a node refused), then the partition checkpoint in its own call, written last."""
    if per_node is None:
        groups: list[tuple[ClusterNode | None, list[str]]] = [(None, list(batch.sections))]
    else:
        groups = list(by_node(client, batch.sections))

    def calls() -> Iterator[Awaitable[ApplyResult]]:
        for node, shops in groups:
            yield _on_primary(batch, node, shops, per_slot, per_node)
        checkpoint = batch.payload([], checkpoint=True)
        yield per_slot(checkpoint, [keys.partition(batch.topic, batch.partition)])

    return await applied_in_turn(calls())


async def _on_primary(
    batch: PartitionBatch,
    node: ClusterNode | None,
    shops: list[str],
    per_slot: SlotCall,
    per_node: NodeCall | None,
) -> ApplyResult:
    """One call for ``shops`` on ``node``, or a call per slot when there is no node call or the
    node refused it."""
    if node is not None and per_node is not None:
        payload = batch.payload(shops, checkpoint=False)
        result = await per_node(node, payload, keys.progress(shops[0]))
        if result is not None:
            return result
    return await applied_in_turn(
        per_slot(batch.payload(part, checkpoint=False), [keys.progress(s) for s in part])
        for part in by_slot(shops)
    )
