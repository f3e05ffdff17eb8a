"""The apply pipeline keeps rounds in flight, in order per partition, and never leaves a gap."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition

from stream.devtools.records import Record
from stream.engines.batch.pipeline import Aborted, ApplyPipeline, Span
from stream.ingest.types import BatchOutcome
from stream.state.store import StoreUnavailable

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


class FakeIngestor:
    """Applies after a delay; batches listed in ``fail`` raise StoreUnavailable."""

    def __init__(self, delays: dict[int, float] | None = None, fail: set[int] | None = None):
        self.applied: list[tuple[int, int]] = []
        self.delays = delays or {}
        self.fail = fail or set()

    async def process(self, topic: str, partition: int, records: Sequence[Any]) -> BatchOutcome:
        first = records[0].offset
        await asyncio.sleep(self.delays.get(first, 0.0))
        if first in self.fail:
            raise StoreUnavailable("redis went away")
        self.applied.append((partition, first))
        return BatchOutcome(len(records), 0, 0, 0, None)  # type: ignore[arg-type]


def batch(*offsets: int) -> list[Record]:
    return [Record(o, None, None, timestamp=1000 + o) for o in offsets]


def pipeline(ingestor: FakeIngestor) -> ApplyPipeline:
    return ApplyPipeline(ingestor)  # type: ignore[arg-type]


async def test_batches_of_one_partition_apply_in_order_even_if_the_first_is_slow() -> None:
    ingestor = FakeIngestor(delays={0: 0.05})
    p = pipeline(ingestor)
    p.submit([(P0, batch(0, 1)), (P1, batch(100))])
    p.submit([(P0, batch(2, 3))])
    assert p.outstanding == 2
    first = await p.settle()  # leaves one round in flight
    assert [s.tp for s in first] == [P0, P1] and p.outstanding == 1
    rest = await p.settle(keep=0)
    assert [s.outcome.counted for s in rest if s.outcome] == [2]
    assert [a for a in ingestor.applied if a[0] == 0] == [(0, 0), (0, 2)]


async def test_a_failed_batch_aborts_the_later_ones_of_its_partition_only() -> None:
    ingestor = FakeIngestor(fail={0})
    p = pipeline(ingestor)
    p.submit([(P0, batch(0)), (P1, batch(100))])
    p.submit([(P0, batch(1)), (P1, batch(101))])
    settled = await p.settle(keep=0)
    errors = {(s.tp.partition, s.span.last_offset): type(s.error) for s in settled}
    assert errors == {
        (0, 0): StoreUnavailable,
        (1, 100): type(None),
        (0, 1): Aborted,
        (1, 101): type(None),
    }
    assert ingestor.applied == [(1, 100), (1, 101)]  # nothing of partition 0 past the failure


async def test_wait_for_returns_once_the_partition_is_idle() -> None:
    ingestor = FakeIngestor(delays={0: 0.05})
    p = pipeline(ingestor)
    p.submit([(P0, batch(0)), (P1, batch(100))])
    await asyncio.wait_for(p.wait_for([P0]), 2)
    assert (0, 0) in ingestor.applied
    assert p.outstanding == 1  # results stay queued for the engine
    await p.settle(keep=0)
    assert p.outstanding == 0


@pytest.mark.parametrize("depth", [0, 1, 2])
async def test_depth_bounds_the_rounds_in_flight(depth: int) -> None:
    p = ApplyPipeline(FakeIngestor(), depth=depth)  # type: ignore[arg-type]
    for i in range(5):
        p.submit([(P0, batch(i))])
        await p.settle()
        assert p.outstanding <= depth


async def test_a_round_keeps_a_span_of_its_batches_not_their_records() -> None:
    p = pipeline(FakeIngestor())
    records = batch(7, 8, 9)
    alive = weakref.ref(records[0])
    p.submit([(P0, records)])
    del records
    await p.wait_for([P0])
    gc.collect()
    assert alive() is None  # applied: freed while the round still waits to be settled
    assert p.outstanding == 1
    [settled] = await p.settle(keep=0)
    assert settled.span == Span(count=3, last_offset=9, first_timestamp=1007, last_timestamp=1009)
