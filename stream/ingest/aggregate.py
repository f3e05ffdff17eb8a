"""One partition batch from its raw records: decode each, dead-letter the rejected, and
pre-aggregate the rest into a :class:`~stream.state.batch.PartitionBatch` on each shop's local
day. One pass: a batch keeps its aggregate, never its decoded events.

A :class:`BatchBuilder` holds what stays fixed while one batch is applied (records, time bounds,
the shops' time zones); the Ingestor builds again from it when the apply asks (a progress
conflict, a total that would overflow, a shop whose time zone was not known yet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumers import Count
from schemas.dead_letter import DeadLetter
from schemas.decoder import Decoder, TimeBounds
from schemas.fields import MAX_ID, valid_shop_id
from schemas.models import Kind, Rejected
from stream.dates.days import DayResolver
from stream.ingest.types import OVERFLOW, TOO_LARGE, PartitionState, RawRecord
from stream.state.batch import PartitionBatch

# Records folded between two turns of the event loop. A request makes several Redis round trips
# and waits behind one slice at each: 1,000 records (~10-25 ms) made a this-month overview take
# ~5 slices; 250 keep each wait a few ms, and 80 turns of the loop per 20,000-record batch
# cost well under a millisecond.
YIELD_EVERY = 250


@dataclass(slots=True)
class _Fold:
    """What one :meth:`BatchBuilder.build` carries from one slice of records to the next."""

    batch: PartitionBatch
    letters: list[DeadLetter] | None
    refused: Container[str]
    unknown: set[str] | None
    skipped: int = 0
    previous: int = -1
    last_occurred: Any = None
    epoch: float = 0.0
    epoch_ms: int = 0


@dataclass(slots=True)
class BatchBuilder:
    topic: str
    partition: int
    records: Sequence[RawRecord]
    state: PartitionState
    kind: Kind
    counter: Count  # how one event counts (consumers/)
    bounds: TimeBounds
    zones: dict[str, str]  # shop id -> time zone, for the shops known so far
    retention_days: int
    ttl_fresh: set[str]  # shops whose progress TTL was refreshed today
    decoder: Decoder
    days: DayResolver
    # Held while a batch folds: the partitions of a round fold one after another, not in turn
    # slice by slice, so a request waits behind one slice between its steps, not one per
    # partition. Folding is CPU work on one thread: serialising it costs no throughput.
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def build(
        self,
        letters: list[DeadLetter] | None = None,
        refused: Container[str] = frozenset(),
        unknown: set[str] | None = None,
    ) -> tuple[PartitionBatch, int]:
        """The batch and how many records it skipped (repeated, or already counted). Rejected
        records go to ``letters`` (if given), as do money events whose dedupe key is in
        ``refused`` (they would overflow a total). A shop not in ``zones`` is added to
        ``unknown`` and its events are left out (the caller reads its zone and builds again).

        The records are folded :data:`YIELD_EVERY` at a time with a turn of the event loop
        between: a worker serves the API on the same loop, and one 20,000-event batch folded
        in one go held it for ~0.5 s (overview p99 873 ms while counting, bench-quick)."""
        batch = self._empty()
        fold = _Fold(batch, letters, refused, unknown)
        records = self.records
        async with self.turn:
            for start in range(0, len(records), YIELD_EVERY):
                if start:
                    await asyncio.sleep(0)
                self._fold(records[start : start + YIELD_EVERY], fold)
        return batch, fold.skipped

    def _fold(self, records: Sequence[RawRecord], f: _Fold) -> None:
        """Add ``records`` to ``f.batch`` (the loop of :meth:`build`, with its locals hoisted)."""
        batch, letters, refused, unknown = f.batch, f.letters, f.refused, f.unknown
        done, timezone = self.state.shop_offsets, self.zones.get
        day_of, decode = self.days.day_of_epoch, self.decoder.decode
        kind, bounds, counter, sections = self.kind, self.bounds, self.counter, batch.sections
        skipped, previous = f.skipped, f.previous
        last_occurred, epoch, epoch_ms = f.last_occurred, f.epoch, f.epoch_ms
        # Live events of one second share one datetime (the decoder's memo): its epoch is
        # computed once, not per event (datetime.timestamp() was the loop's costliest line).
        for r in records:
            offset = r.offset
            if offset <= previous:
                # The same record delivered twice in one batch (Faust re-delivers its last
                # record after a seek): count the first copy only. Redis could not tell, since
                # the apply checks a shop's first offset in the batch (docs/state.md).
                skipped += 1
                continue
            previous = offset
            event: Any = decode(kind, r.key, r.value, bounds)
            if isinstance(event, Rejected):
                if letters is not None:
                    letters.append(self._letter(r, event.reason, event.detail))
                continue
            shop = event.shop_id
            if offset <= done.get(shop, -1):
                skipped += 1
                continue
            zone = timezone(shop)
            if zone is None:
                if unknown is not None:
                    unknown.add(shop)
                continue
            section = sections.get(shop)
            if section is None:
                section = batch.section(shop, offset)
                section.expected_offset = done.get(shop, -1)
            occurred = event.occurred_at
            if occurred is not last_occurred:
                last_occurred = occurred
                epoch = occurred.timestamp()
                epoch_ms = int(epoch * 1000)
            counter(section, event, day_of(zone, epoch, occurred))
            if refused and section.money and section.money[-1].seen_key in refused:
                section.money.pop()  # dead-lettered, yet covered by the shop's progress
                section.last_offset = offset
                if letters is not None:
                    letters.append(self._letter(r, OVERFLOW, TOO_LARGE))
                continue
            section.saw(offset, epoch_ms)
        f.skipped, f.previous = skipped, previous
        f.last_occurred, f.epoch, f.epoch_ms = last_occurred, epoch, epoch_ms

    def _empty(self) -> PartitionBatch:
        state = self.state
        return PartitionBatch(
            self.topic,
            self.partition,
            state.generation,
            self.records[-1].offset,
            self.retention_days,
            epoch=state.epoch,
            expected_checkpoint=state.checkpoint,
            ttl_fresh=self.ttl_fresh,
        )

    def _letter(self, r: RawRecord, reason: str, detail: str) -> DeadLetter:
        return DeadLetter(self.topic, self.partition, r.offset, r.key, r.value, reason, detail)


def keyed_shops(records: Sequence[RawRecord]) -> list[str]:
    """The shop ids the records' keys name (a view's key is its shop id; others are ignored)."""
    out = []
    for key in {r.key for r in records}:
        if key is not None and len(key) <= MAX_ID:
            shop = key.decode("ascii", errors="replace")
            if valid_shop_id(shop):
                out.append(shop)
    return out
