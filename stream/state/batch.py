"""A pre-aggregated batch of one topic partition, ready for one atomic apply.

Pure data: no Kafka, no Redis. Counting modules (``consumers/``) add to a :class:`ShopSection`;
:meth:`PartitionBatch.payload` turns the batch into the document the apply script (or the
in-memory store) executes. The payload format is documented in docs/state.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from stream.state import keys
from stream.state.retention import SLACK_DAYS

_DAY_SECONDS = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# (metric, day, group, variation) -> delta: views and clicks, pre-aggregated
Cell = tuple[str, str, str, str]
# key -> field -> delta
Counters = dict[str, dict[str, int]]
# (group, subscriber) -> [variation of the first view in the batch, its day, saw another too]
Exposures = dict[tuple[str, str], list[Any]]


@dataclass(slots=True)
class MoneyEntry:
    """One upgrade or downgrade: applied only if its dedupe marker did not exist yet."""

    seen_key: str
    counters: Counters
    hll: tuple[str, str] | None = None  # (key, subscriber_id)
    ledger: tuple[str, int, str] | None = None  # (key, score ms, member JSON)
    # For the group's experiment: (exposed key, group, "u" | "d", currency, revenue_minor)
    experiment: tuple[str, str, str, str, int] | None = None


@dataclass(slots=True)
class ShopSection:
    """Everything one partition batch changes for one shop."""

    shop: str
    first_offset: int
    last_offset: int
    cells: dict[Cell, int] = field(default_factory=lambda: defaultdict(int))
    money: list[MoneyEntry] = field(default_factory=list)
    exposures: Exposures = field(default_factory=dict)
    last_event_ms: int = 0
    events: int = 0
    expected_offset: int = -1  # the progress this worker last wrote for the shop, if known

    def expose(self, group: str, subscriber: str, variation: str, day: str) -> None:
        """A view by a known subscriber: the first in the batch per (group, subscriber) is
        the candidate exposure; another variation later in the batch marks a crossing."""
        seen = self.exposures.get((group, subscriber))
        if seen is None:
            self.exposures[(group, subscriber)] = [variation, day, 0]
        elif seen[0] != variation:
            seen[2] = 1

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
    epoch: int = 0
    expected_checkpoint: int = -1  # the checkpoint this worker last wrote or read (-1: none)
    sections: dict[str, ShopSection] = field(default_factory=dict)
    # Shops whose progress hash had its TTL refreshed today (the Ingestor's memo); the payload
    # asks for a refresh of the others and lists them in ``ttl_refreshed``.
    ttl_fresh: Container[str] = frozenset()
    ttl_refreshed: list[str] = field(default_factory=list)

    def section(self, shop: str, offset: int) -> ShopSection:
        s = self.sections.get(shop)
        if s is None:
            s = self.sections[shop] = ShopSection(shop, offset, offset)
        return s

    @property
    def events(self) -> int:
        return sum(s.events for s in self.sections.values())

    def payload(
        self, shops: list[str] | None = None, checkpoint: bool = True, advance: bool = True
    ) -> dict[str, Any]:
        """The apply document for ``shops`` (all by default). With ``checkpoint`` the script
        checks the partition checkpoint (fenced, rewound) and, with ``advance``, moves it to
        the batch's last offset; without ``advance`` it checks it only (a batch's earlier
        calls on one Redis: stream/state/redis.py)."""
        names = list(self.sections) if shops is None else shops
        return {
            "t": self.topic,
            "p": self.partition,
            "g": self.generation,
            "e": self.epoch,
            "ck": keys.partition(self.topic, self.partition) if checkpoint else None,
            "co": self.last_offset if advance else -1,
            "xc": self.expected_checkpoint,
            "ttl": self.retention_days * _DAY_SECONDS,
            "s": [self._section_doc(self.sections[n]) for n in names],
        }

    def _section_doc(self, s: ShopSection) -> dict[str, Any]:
        # The hot path of a batch: one pass over the cells. A cell is unique per (metric, day,
        # group, variation), so variation fields are appended as they come; the day and group
        # rollups sum over cells and are dicts.
        shop = s.shop
        sep = keys.SEP
        rollups: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        per_variation: dict[tuple[str, str], list[Any]] = {}
        anonymous = keys.ANONYMOUS_VIEWS
        for (metric, day, group, variation), delta in s.cells.items():
            if not delta:
                continue
            if metric is not anonymous:  # kept per variation only: experiments read it there
                pair = rollups.get(day)
                if pair is None:
                    pair = rollups[day] = ({}, {})
                rollup, per_group = pair
                rollup[metric] = rollup.get(metric, 0) + delta
                gf = metric + sep + group
                per_group[gf] = per_group.get(gf, 0) + delta
            fields = per_variation.get((day, group))
            if fields is None:
                fields = per_variation[(day, group)] = []
            fields.append(metric + sep + variation)
            fields.append(delta)
        ops: list[list[Any]] = []
        for day, (rollup, per_group) in rollups.items():
            ops.append([keys.day(shop, day), _flat(rollup)])
            ops.append([keys.groups(shop, day), _flat(per_group)])
        for (day, group), fields in per_variation.items():
            ops.append([keys.variations(shop, day, group), fields])
        money = [_money_doc(m) for m in s.money]
        refresh = shop not in self.ttl_fresh
        if refresh:
            self.ttl_refreshed.append(shop)
        doc: dict[str, Any] = {
            "id": shop,
            "k": keys.progress(shop),
            "x": int(refresh),
            "f": s.first_offset,
            "xo": s.expected_offset,
            "l": s.last_offset,
            "le": s.last_event_ms,
            "h": ops,
            "$": money,
        }
        if s.exposures:
            doc["xp"] = self._exposure_ops(shop, s.exposures)
        if s.exposures or any(m.experiment for m in s.money):
            doc["xk"], doc["xf"] = keys.exposures_prefix(shop), keys.experiment_starts(shop)
        return doc

    def _exposure_ops(self, shop: str, exposures: Exposures) -> list[list[Any]]:
        """[exposed key, group, variation, day, expire-at epoch s, crossed]: a subscriber's
        hash expires when the retention sweep deletes its exposure day's counters."""
        ends: dict[str, int] = {}
        ops = []
        for (group, subscriber), (variation, day, crossed) in exposures.items():
            end = ends.get(day)
            if end is None:
                days = date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL
                end = ends[day] = (days + self.retention_days + SLACK_DAYS) * _DAY_SECONDS
            ops.append([keys.exposed(shop, group, subscriber), group, variation, day, end, crossed])
        return ops


def _money_doc(m: MoneyEntry) -> dict[str, Any]:
    entry: dict[str, Any] = {"s": m.seen_key, "h": _hash_ops(m.counters)}
    if m.hll is not None:
        entry["hl"], entry["hm"] = m.hll
    if m.ledger is not None:
        entry["lk"], entry["ls"], entry["lm"] = m.ledger
    if m.experiment is not None:
        entry["x"] = m.experiment
    return entry


def _hash_ops(counters: Counters) -> list[list[Any]]:
    return [[k, _flat(v)] for k, v in counters.items()]


def _flat(fields: dict[str, int]) -> list[Any]:
    out: list[Any] = []
    for f, d in fields.items():
        if d:
            out.append(f)
            out.append(d)
    return out
