"""One partition batch from its raw records: decode each, dead-letter the rejected, and
pre-aggregate the rest into a :class:`~stream.state.batch.PartitionBatch` on each shop's local
day. One pass: a batch keeps its aggregate, never its decoded events.

A :class:`BatchBuilder` holds what stays fixed while one batch is applied (records, time bounds,
the shops' time zones); the Ingestor builds again from it when the apply asks (a progress
conflict, a total that would overflow, a shop whose time zone was not known yet).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from consumers import Count
from schemas.dead_letter import DeadLetter
from schemas.decoder import Decoder, TimeBounds
from schemas.fields import MAX_ID, valid_shop_id
from schemas.models import Kind, Rejected
from stream.dates.days import DayResolver
from stream.ingest.types import OVERFLOW, TOO_LARGE, PartitionState, RawRecord
from stream.state.batch import PartitionBatch


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

    def build(
        self,
        letters: list[DeadLetter] | None = None,
        refused: Container[str] = frozenset(),
        unknown: set[str] | None = None,
    ) -> tuple[PartitionBatch, int]:
        """The batch and how many records it skipped (repeated, or already counted). Rejected
        records go to ``letters`` (if given), as do money events whose dedupe key is in
        ``refused`` (they would overflow a total). A shop not in ``zones`` is added to
        ``unknown`` and its events are left out (the caller reads its zone and builds again)."""
        batch = self._empty()
        done, timezone = self.state.shop_offsets, self.zones.get
        day_of, decode = self.days.day_of_epoch, self.decoder.decode
        kind, bounds, counter, sections = self.kind, self.bounds, self.counter, batch.sections
        skipped, previous = 0, -1
        # Live events of one second share one datetime (the decoder's memo): its epoch is
        # computed once, not per event (datetime.timestamp() was the loop's costliest line).
        last_occurred: Any = None
        epoch, epoch_ms = 0.0, 0
        for r in self.records:
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
        return batch, skipped

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
