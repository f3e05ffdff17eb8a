"""What the Ingestor hands its engines and takes from them: records, partition state, outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from consumers import Count
from schemas.models import Kind
from stream.state.store import ApplyResult

# topic -> (the kind its records decode as, how one event counts); wired in stream.app.
Routes = Mapping[str, tuple[Kind, Count]]


class RawRecord(Protocol):
    """What both aiokafka's ConsumerRecord and Faust's Message offer."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...


class PartitionFenced(Exception):
    """Another worker owns this partition now; this one must stop writing for it."""

    retriable = False


class PartitionRewound(Exception):
    """Redis holds older progress than this worker wrote for the partition (an RDB restore, a
    lost AOF tail, a failover to a lagging replica, a Cluster node that lost writes): nothing of
    the batch was applied, and the engine must read the partition again from ``resume_offset``."""

    retriable = True

    def __init__(self, topic: str, partition: int, resume_offset: int) -> None:
        super().__init__(f"{topic}[{partition}] rewound: read again from {resume_offset}")
        self.resume_offset = resume_offset


OVERFLOW = "bad_value:total_overflow"
TOO_LARGE = "a running total would pass 2^63 - 1, the largest a counter holds"

# Per-shop offsets a partition keeps by default (learnt from conflicts, or written by this worker):
# a cache, every miss is safe (the apply script's conflict answer relearns it), so the oldest go
# first. Settings.shop_offsets_per_partition (UPSELL_SHOP_OFFSETS_PER_PARTITION) sets it.
MAX_SHOP_OFFSETS = 20_000


@dataclass(slots=True)
class PartitionState:
    generation: int
    resume_offset: int
    epoch: int = 0
    shop_offsets: dict[str, int] = field(default_factory=dict)
    # Progress, for the lag: the next offset to apply, when the last apply succeeded (or the
    # claim, before any) in epoch seconds, and the Kafka timestamp (ms) of the last applied
    # record (None before one; the engines note it, Ingestor.note_last_record).
    next_offset: int = 0
    applied_at: float = 0.0
    last_record_ms: int | None = None
    checkpoint: int = -1  # what this worker last wrote or read as the partition checkpoint
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # applies and rewind checks
    day: int = 0  # the UTC day (since the epoch) the shop offsets were learnt on

    def learn(self, offsets: dict[str, int], limit: int = MAX_SHOP_OFFSETS) -> None:
        """Remember shops' offsets; past ``limit``, all but the newest half of it are forgotten."""
        shops = self.shop_offsets
        shops.update(offsets)
        if len(shops) > limit:
            self.shop_offsets = dict(list(shops.items())[-(limit // 2) :])


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    counted: int
    duplicates: int
    dead_letters: int
    skipped: int
    result: ApplyResult
