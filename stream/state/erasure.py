"""Erasing one subscriber of a shop (a GDPR erasure, Shopify's ``customers/redact``).

What in Redis names a subscriber (docs/state.md, docs/contract.md section 7):

- the conversions ledger ``us:{S}:ledger``: each member is an upgrade's JSON item with its
  ``subscriber_id`` and ``order_id``. Those members are removed;
- the upgraders HyperLogLog ``us:{S}:hll:D`` holds no id, only register maxima of 64-bit
  hashes, from which no id can be read back; it stays, so ``unique_upgraders`` is unchanged;
- counters, subscriber snapshots (counts per day), the money dedupe markers
  (``seen:u:<event_id>``, value ``1``) and the collector's claims (``col:<event_id>``) hold no
  subscriber id. The dedupe markers stay: they are what keeps an upgrade read again from Kafka
  from being counted (and its ledger item written) a second time.

So the aggregate counts do not move. The erasure is recorded in ``us:{S}:erasures`` (newest
first): when, by whom, through which door and how many ledger entries went, never the id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from stream.state import keys
from stream.state.changelog import key_item, mark_args, mark_script, member_item
from stream.state.changelog_cluster import mark_commands
from stream.state.redis import AnyRedis

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_SCAN_COUNT = 1000
MAX_RECORDS = 10_000  # erasure records kept per shop, newest first


class ErasureError(ValueError):
    """The erasure cannot be done as asked (an empty id, one over 128 characters)."""


@dataclass(frozen=True, slots=True)
class Erasure:
    shop_id: str
    at: datetime
    by: str
    via: str  # "cli" or "api"
    ledger_entries_removed: int

    def record(self) -> dict[str, Any]:
        """The stored record: no subscriber id, no order id."""
        return {
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "by": self.by,
            "via": self.via,
            "ledger_entries_removed": self.ledger_entries_removed,
        }


def _check(value: str, what: str) -> None:
    if not value or len(value) > 128:
        raise ErasureError(f"{what} is 1 to 128 characters, got {len(value)}")


async def erase_subscriber(
    redis: AnyRedis, shop: str, subscriber: str, *, by: str, via: str, now: datetime
) -> Erasure:
    """Remove the ledger entries of ``subscriber`` in ``shop`` and record the erasure.

    The ledger is read with ZSCAN matching the id's JSON text, then each candidate is parsed
    and compared exactly, so an id that is a prefix of another's is not erased with it."""
    _check(shop, "--shop")
    _check(subscriber, "--subscriber")
    ledger = keys.ledger(shop)
    needle = orjson.dumps({"subscriber_id": subscriber}).decode()[1:-1]  # "subscriber_id":"…"
    pattern = "*" + needle.translate(_GLOB_SPECIAL) + "*"
    doomed: list[bytes | str] = []
    async for member, _score in redis.zscan_iter(ledger, match=pattern, count=_SCAN_COUNT):
        item = orjson.loads(member)
        if isinstance(item, dict) and item.get("subscriber_id") == subscriber:
            doomed.append(member)
    removed = 0
    for i in range(0, len(doomed), 500):
        removed += await _remove(redis, shop, ledger, doomed[i : i + 500])
    done = Erasure(shop, now, by, via, removed)
    await _record(redis, shop, done)
    return done


async def _record(redis: AnyRedis, shop: str, done: Erasure) -> None:
    """Add ``done`` to the shop's erasure records (marked: a restore brings them back)."""
    log = keys.erasures(shop)

    def write(pipe: Any) -> None:
        pipe.lpush(log, orjson.dumps(done.record()))
        pipe.ltrim(log, 0, MAX_RECORDS - 1)

    await _marked(redis, shop, [key_item(log)], write)


async def _remove(redis: AnyRedis, shop: str, ledger: str, members: list[bytes | str]) -> int:
    """ZREM ``members``, marked: the changelog then carries their tombstones, so a restore from
    it does not bring an erased subscriber back."""
    texts = [m.decode() if isinstance(m, bytes) else m for m in members]
    gone, *_ = await _marked(
        redis, shop, [member_item(ledger, m) for m in texts], lambda p: p.zrem(ledger, *members)
    )
    return int(gone)


async def _marked(
    redis: AnyRedis, shop: str, items: list[str], write: Callable[[Any], object]
) -> list[Any]:
    """``write``'s commands and the changelog's marks of ``items`` in the same transaction (on
    a Cluster, in the shop's slot: stream/state/changelog_cluster.py); their replies."""
    async with redis.pipeline(transaction=True) as pipe:
        write(pipe)
        if isinstance(redis, Redis):
            names, args = mark_args(shop, items)
            await mark_script(redis)(keys=names, args=args, client=pipe)
        else:
            mark_commands(pipe, shop, items)
        replies: list[Any] = await pipe.execute()
    return replies


async def erasure_records(redis: AnyRedis, shop: str, limit: int = 100) -> list[dict[str, Any]]:
    """The shop's erasure records, newest first."""
    raw: list[bytes | str] = await redis.lrange(keys.erasures(shop), 0, limit - 1)
    return [orjson.loads(r) for r in raw]
