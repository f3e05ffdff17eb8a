"""The per-day index the retention sweep reads instead of scanning the keyspace.

For every shop-local day ``D`` that has counter keys, Redis holds the set ``us:days:D`` of the
shops with keys of that day, and the sorted set ``us:days`` lists the days (all scores 0, so
``ZRANGEBYLEX`` returns the days up to a cutoff). A shop's keys of day ``D`` are then known by
name: ``day``, ``grp`` and ``hll`` of ``D``, plus ``var``, ``trn`` and ``xp`` of each group in the
``grp`` rollup's fields (every group with counters of that day has a field there: an exposure of
day D is a view of day D). The sweep's cost is
therefore a function of the days it deletes, not of the keyspace.

The index is written **before** the batch that creates the keys: a batch that fails after it
leaves an index entry without keys (deleting absent keys is harmless), never keys without an
entry. Each store remembers the (shop, day) pairs it indexed, so live traffic pays one ``SADD``
per shop and day per worker, not one per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

from stream.state import keys
from stream.state.batch import PartitionBatch
from stream.state.retention import is_expired_key

_MAX_REMEMBERED = 100_000  # (shop, day) pairs a store remembers by default (cleared when full)


def batch_days(batch: PartitionBatch, shops: Iterable[str] | None = None) -> set[tuple[str, str]]:
    """The (shop, day) pairs whose day-scoped keys ``batch`` may create."""
    pairs: set[tuple[str, str]] = set()
    for shop in batch.sections if shops is None else shops:
        section = batch.sections[shop]
        pairs.update([(shop, day) for day in {cell[1] for cell in section.cells}])
        for money in section.money:
            for name in money.counters:
                money_day = keys.day_of(name)
                if money_day is not None:
                    pairs.add((shop, money_day))
    return pairs


class DayIndex:
    """What one store has indexed; ``missing`` says what a batch still has to add."""

    def __init__(self, max_entries: int = _MAX_REMEMBERED) -> None:
        self.max_entries = max_entries
        self._indexed: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self._indexed)

    def missing(self, pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
        """Day -> shops of ``pairs`` not indexed by this store yet."""
        by_day: dict[str, list[str]] = defaultdict(list)
        for shop, day in pairs - self._indexed:
            by_day[day].append(shop)
        return by_day

    def written(self, by_day: dict[str, list[str]]) -> None:
        pairs = sum(map(len, by_day.values()))
        if len(self._indexed) + pairs > self.max_entries:
            self._indexed.clear()  # a miss costs one SADD
        if pairs <= self.max_entries:
            self._indexed.update((shop, day) for day, shops in by_day.items() for shop in shops)

    def forget(self) -> None:
        """Redis may have lost the index (an outage, a flush): write it again as batches come."""
        self._indexed.clear()


def index_commands(pipe: Any, by_day: dict[str, list[str]]) -> None:
    """Queue the index writes for ``by_day`` (day -> shops) on a pipeline."""
    for day, shops in by_day.items():
        pipe.sadd(keys.day_shops(day), *shops)
    pipe.zadd(keys.DAYS, dict.fromkeys(by_day, 0))


def shop_day_keys(shop: str, day: str, group_fields: Iterable[bytes | str]) -> list[str]:
    """Every day-scoped key of ``shop`` on ``day``, given the fields of its ``grp`` rollup."""
    groups = {keys.split_field(f.decode() if isinstance(f, bytes) else f)[1] for f in group_fields}
    names = [keys.day(shop, day), keys.groups(shop, day), keys.upgraders(shop, day)]
    for group in groups:
        names += [
            keys.variations(shop, day, group),
            keys.transitions(shop, day, group),
            keys.exposures(shop, day, group),
        ]
    return names


async def expired_days(client: Any, last_day: str) -> list[str]:
    """The indexed days ``<= last_day``, oldest first."""
    raw = await client.zrangebylex(keys.DAYS, "-", f"[{last_day}")
    return [d.decode() if isinstance(d, bytes) else str(d) for d in raw]


async def day_key_chunks(client: Any, day: str, chunk: int) -> AsyncIterator[list[str]]:
    """The day-scoped key names of ``day``, ``chunk`` shops at a time."""
    shops: list[str] = []
    async for raw in client.sscan_iter(keys.day_shops(day), count=chunk):
        shops.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        if len(shops) >= chunk:
            yield await _names(client, day, shops)
            shops = []
    if shops:
        yield await _names(client, day, shops)


async def _names(client: Any, day: str, shops: list[str]) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for shop in shops:
        pipe.hkeys(keys.groups(shop, day))
    fields = await pipe.execute()
    return [
        name for shop, f in zip(shops, fields, strict=True) for name in shop_day_keys(shop, day, f)
    ]


async def scan_and_delete(client: Any, last_day: str, chunk: int) -> int:
    """SCAN every per-shop key (every primary of a cluster) and UNLINK the expired days'.
    Keys deleted or added while it runs are harmless: SCAN returns each key present
    throughout at least once, and a key seen twice is deleted once."""
    deleted = 0
    doomed: list[str] = []
    async for raw in client.scan_iter(match=keys.SHOP_KEYS, count=chunk):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if is_expired_key(name, last_day):
            doomed.append(name)
            if len(doomed) >= chunk:
                deleted += int(await client.unlink(*doomed))
                doomed.clear()
    if doomed:
        deleted += int(await client.unlink(*doomed))
    return deleted
