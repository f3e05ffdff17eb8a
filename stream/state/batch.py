"""A pre-aggregated batch of one topic partition, ready for one atomic apply.

Pure data: no Kafka, no Redis. Counting modules (``consumers/``) add to a :class:`ShopSection`;
:meth:`PartitionBatch.payload` turns the batch into the document the apply script (or the
in-memory store) executes. The payload format is documented in docs/state.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from stream.state import keys

_DAY_SECONDS = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# (metric, day, group, variation) -> delta: views and clicks, pre-aggregated
Cell = tuple[str, str, str, str]
# key -> field -> delta
Counters = dict[str, dict[str, int]]


def day_expire_at(day: str, retention_days: int) -> int:
    """Unix time at which a key of shop-local ``day`` expires: retention after it, plus slack."""
    ordinal = date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL
    return (ordinal + retention_days + 2) * _DAY_SECONDS


@dataclass(slots=True)
class MoneyEntry:
    """One upgrade or downgrade: applied only if its dedupe marker did not exist yet."""

    seen_key: str
    counters: Counters
    day: str
    hll: tuple[str, str] | None = None  # (key, subscriber_id)
    ledger: tuple[str, int, bytes] | None = None  # (key, score ms, member)


@dataclass(slots=True)
class ShopSection:
    """Everything one partition batch changes for one shop."""

    shop: str
    first_offset: int
    last_offset: int
    cells: dict[Cell, int] = field(default_factory=lambda: defaultdict(int))
    money: list[MoneyEntry] = field(default_factory=list)
    last_event_ms: int = 0
    events: int = 0

    def saw(self, offset: int, event_ms: int) -> None:
        self.last_offset = offset
        self.events += 1
        if event_ms > self.last_event_ms:
            self.last_event_ms = event_ms


@dataclass(slots=True)
class PartitionBatch:
    """The sections of one topic partition batch, plus the partition checkpoint to store."""

    topic: str
    partition: int
    generation: int
    last_offset: int  # the partition checkpoint after this batch
    retention_days: int
    sections: dict[str, ShopSection] = field(default_factory=dict)

    def section(self, shop: str, offset: int) -> ShopSection:
        s = self.sections.get(shop)
        if s is None:
            s = self.sections[shop] = ShopSection(shop, offset, offset)
        return s

    @property
    def events(self) -> int:
        return sum(s.events for s in self.sections.values())

    def payload(self, shops: list[str] | None = None, checkpoint: bool = True) -> dict[str, Any]:
        """The apply document for ``shops`` (all by default), with or without the checkpoint."""
        names = list(self.sections) if shops is None else shops
        retention_s = self.retention_days * _DAY_SECONDS
        return {
            "t": self.topic,
            "p": self.partition,
            "g": self.generation,
            "ck": keys.partition(self.topic, self.partition) if checkpoint else None,
            "co": self.last_offset,
            "ttl": retention_s,
            "s": [_section_doc(self.sections[n], self.retention_days) for n in names],
        }


def _section_doc(s: ShopSection, retention_days: int) -> dict[str, Any]:
    expire: dict[str, int] = {}

    def exp(day: str) -> int:
        at = expire.get(day)
        if at is None:
            at = expire[day] = day_expire_at(day, retention_days)
        return at

    counters: Counters = {}
    expire_of: dict[str, int] = {}
    for (metric, day, group, variation), delta in s.cells.items():
        at = exp(day)
        for key, fld in (
            (keys.day(s.shop, day), metric),
            (keys.groups(s.shop, day), keys.field(metric, group)),
            (keys.variations(s.shop, day, group), keys.field(metric, variation)),
        ):
            fields = counters.get(key)
            if fields is None:
                fields = counters[key] = {}
                expire_of[key] = at
            fields[fld] = fields.get(fld, 0) + delta
    money = []
    for m in s.money:
        at = exp(m.day)
        entry: dict[str, Any] = {"s": m.seen_key, "h": _hash_ops(m.counters, at)}
        if m.hll is not None:
            entry["hl"], entry["hm"] = m.hll
            entry["hx"] = at
        if m.ledger is not None:
            entry["lk"], entry["ls"], member = m.ledger
            entry["lm"] = member.decode()
        money.append(entry)
    return {
        "id": s.shop,
        "k": keys.progress(s.shop),
        "m": keys.meta(s.shop),
        "f": s.first_offset,
        "l": s.last_offset,
        "le": s.last_event_ms,
        "h": [[k, expire_of[k], _flat(v)] for k, v in counters.items()],
        "$": money,
    }


def _hash_ops(counters: Counters, expire_at: int) -> list[list[Any]]:
    return [[k, expire_at, _flat(v)] for k, v in counters.items()]


def _flat(fields: dict[str, int]) -> list[Any]:
    out: list[Any] = []
    for f, d in fields.items():
        if d:
            out.append(f)
            out.append(d)
    return out
