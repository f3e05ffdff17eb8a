"""The list of shops (``GET /v1/shops``): bounded by the retention, read a page at a time.

Two sorted sets:

- ``us:shops:active``: shop id -> the last UTC day (days since the epoch) it counted an event.
  Each worker writes a shop once a day (its seen memo), and the retention sweep removes the
  shops not seen since the retention's cutoff, so it holds the shops that may still have data.
- ``us:shops:index``: every listed shop, all scores 0, so ``ZRANGEBYLEX`` pages it in shop id
  order: the active shops and the shops with settings (``us:shops``). The sweep removes a shop
  from it once it is neither.

A deployment that ran before these sets had one set, ``us:shops:seen``, without retention: the
first worker that starts (and each daily sweep) folds it into them as seen today, then deletes it.
"""

from __future__ import annotations

from typing import Any

from stream.state import keys

_CHUNK = 1_000


def mark_commands(pipe: Any, shop_ids: list[str], day: int, indexed: bool = True) -> None:
    """Queue the writes listing ``shop_ids`` as seen on UTC ``day`` on a pipeline (and in the
    index, unless ``indexed`` is False: a Cluster transaction, the index is in another slot)."""
    pipe.zadd(keys.SHOPS_ACTIVE, dict.fromkeys(shop_ids, day), gt=True)
    if indexed:
        pipe.zadd(keys.SHOPS_INDEX, dict.fromkeys(shop_ids, 0), nx=True)


async def fold_legacy(client: Any, day: int) -> int:
    """Move the shops of the old ``us:shops:seen`` set into the sorted sets as seen on ``day``
    (their last day is not known), then delete it. Returns how many were moved."""
    if not await client.exists(keys.SHOPS_SEEN_LEGACY):
        return 0
    moved = 0
    batch: list[str] = []
    async for raw in client.sscan_iter(keys.SHOPS_SEEN_LEGACY, count=_CHUNK):
        batch.append(_text(raw))
        if len(batch) >= _CHUNK:
            moved += await _add(client, batch, day)
            batch = []
    if batch:
        moved += await _add(client, batch, day)
    await client.unlink(keys.SHOPS_SEEN_LEGACY)
    return moved


async def _add(client: Any, shop_ids: list[str], day: int) -> int:
    pipe = client.pipeline(transaction=False)
    mark_commands(pipe, shop_ids, day)
    await pipe.execute()
    return len(shop_ids)


async def trim(client: Any, first_kept_day: int) -> int:
    """Remove the shops last seen before UTC day ``first_kept_day`` from the active set, and
    from the index those of them without settings. Returns how many left the active set."""
    removed = 0
    while True:
        raw = await client.zrangebyscore(
            keys.SHOPS_ACTIVE, "-inf", f"({first_kept_day}", start=0, num=_CHUNK
        )
        if not raw:
            return removed
        shops = [_text(r) for r in raw]
        await client.zrem(keys.SHOPS_ACTIVE, *shops)
        settings = await client.hmget(keys.SHOPS, shops)
        gone = [s for s, kept in zip(shops, settings, strict=True) if kept is None]
        if gone:
            await client.zrem(keys.SHOPS_INDEX, *gone)
        removed += len(shops)


async def page(
    client: Any, after: str | None, limit: int, only: frozenset[str] | None
) -> tuple[list[str], str | None]:
    """Up to ``limit`` listed shop ids after ``after``, in id order (only those in ``only`` if
    given), and the last one returned when more follow (the next page's ``after``)."""
    if only is None:
        low = f"({after}" if after is not None else "-"
        raw = await client.zrangebylex(keys.SHOPS_INDEX, low, "+", start=0, num=limit + 1)
        ids = [_text(r) for r in raw]
    else:
        ids = []
        candidates = sorted(s for s in only if after is None or s > after)
        for first in range(0, len(candidates), _CHUNK):
            chunk = candidates[first : first + _CHUNK]
            pipe = client.pipeline(transaction=False)
            for shop in chunk:
                pipe.zscore(keys.SHOPS_INDEX, shop)
            listed = await pipe.execute()
            ids += [s for s, score in zip(chunk, listed, strict=True) if score is not None]
            if len(ids) > limit:
                break
    if len(ids) > limit:
        return ids[:limit], ids[limit - 1]
    return ids, None


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
