"""What the ingestion side needs from state, independent of the backend.

:class:`stream.state.redis.RedisStore` is the real one; :class:`stream.state.memory.MemoryStore`
executes the same payloads in plain Python for fast unit tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from schemas.models import ShopSettings
from stream.state.batch import PartitionBatch


class StoreError(Exception):
    """Base of state errors; ``retriable`` tells callers whether waiting and retrying can help."""

    retriable: bool = False


class StoreUnavailable(StoreError):
    """The backend cannot be reached (Redis down, timeout). Retry with backoff."""

    retriable = True


@dataclass(frozen=True, slots=True)
class Claim:
    """Ownership of a partition: the fencing generation and where consumption resumes."""

    generation: int
    resume_offset: int  # next offset to read: stored checkpoint + 1, or 0
    epoch: int = 0  # incremented when the partition's log restarted (topic recreated/truncated)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """``status`` is ``ok``, ``fenced`` (another worker owns the partition now), ``rewound``
    (Redis holds older progress than this worker last wrote: it lost writes; ``rewound`` maps
    the shops whose own progress went back -> their stored offset, empty when the partition
    checkpoint did), ``conflict`` (some shops already have later progress: ``conflicts`` maps
    shop -> stored offset) or ``overflow`` (the money entries with these dedupe keys would pass
    a counter's limit). Anything but ``ok`` changed nothing."""

    status: str
    money_counted: int = 0
    money_duplicates: int = 0
    conflicts: dict[str, int] = field(default_factory=dict)
    rewound: dict[str, int] = field(default_factory=dict)
    overflow: list[str] = field(default_factory=list)


async def applied_in_turn(calls: Iterable[Awaitable[ApplyResult]]) -> ApplyResult:
    """The calls of one batch, awaited one after the other: their money figures summed, or the
    first answer that is not ``ok`` (the calls after it are never made: pass a generator)."""
    counted = duplicates = 0
    for call in calls:
        result = await call
        if result.status != "ok":
            return result
        counted += result.money_counted
        duplicates += result.money_duplicates
    return ApplyResult("ok", counted, duplicates)


def parse_reply(reply: list[Any]) -> ApplyResult:
    """The apply script's reply (stream/state/apply.lua) as an ApplyResult."""
    status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    if status == "ok":
        return ApplyResult("ok", int(reply[1]), int(reply[2]))
    items = [x.decode() if isinstance(x, bytes) else str(x) for x in reply[1:]]
    if status in ("conflict", "rewound"):
        offsets = {items[i]: int(items[i + 1]) for i in range(0, len(items), 2)}
        if status == "conflict":
            return ApplyResult("conflict", conflicts=offsets)
        return ApplyResult("rewound", rewound=offsets)
    if status == "overflow":
        return ApplyResult("overflow", overflow=items)
    return ApplyResult("fenced")


class CounterStore(Protocol):
    async def claim(self, topic: str, partition: int, above: int = 0) -> Claim:
        """A new fencing generation, greater than the stored one and than ``above``."""
        ...

    async def checkpoint(self, topic: str, partition: int) -> int:
        """The stored partition checkpoint (last applied offset), -1 if none."""
        ...

    async def apply(self, batch: PartitionBatch) -> ApplyResult: ...

    async def restart_log(self, topic: str, partition: int, generation: int) -> Claim: ...

    async def mark_shops_seen(self, shop_ids: list[str], day: int) -> None: ...


class SettingsStore(Protocol):
    async def write_shops(self, changes: Mapping[str, ShopSettings | None]) -> None:
        """Store each shop's settings, or delete them (None), in one round trip."""
        ...

    async def get_shops(self, shop_ids: list[str]) -> dict[str, ShopSettings]:
        """The settings of those of ``shop_ids`` that have any."""
        ...

    async def mark_shops_seen(self, shop_ids: list[str], day: int) -> None: ...

    async def put_subscribers(self, shop_id: str, day: date, count: int, ttl_s: int) -> None: ...


class RetentionStore(Protocol):
    async def claim_sweep(self, last_day: str, ttl_s: int) -> bool:
        """True for the first caller per ``last_day``: that one sweeps, the others skip."""
        ...

    async def release_sweep(self, last_day: str) -> None: ...

    async def finish_sweep(self, last_day: str) -> None:
        """Mark the claimed sweep of ``last_day`` done (``keys.SWEEP_DONE``), for whoever waits."""
        ...

    async def trim_shops(self, today: int, first_kept_day: int) -> int:
        """Drop the shops last seen before UTC day ``first_kept_day`` from the shop list (and a
        legacy ``us:shops:seen`` folded in as seen ``today``); returns how many left it."""
        ...

    async def delete_days_through(self, last_day: str) -> int:
        """Delete every day-scoped key (keys.DAY_KINDS) of days ``<= last_day``; returns how
        many keys were deleted."""
        ...
