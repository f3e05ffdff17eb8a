"""LagWatch: lag from high watermarks and the Ingestor's progress, whether or not applies
succeed, and per-partition series only for owned partitions. The broker side is a table of high
watermarks here; tests/integration/test_stall_alert.py runs the real thing."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from stream.devtools.offline_ingestor import offline_ingestor
from stream.engines.lag_watch import LagWatch, lag_seconds
from stream.settings import Topics
from stream.state.memory import MemoryStore
from stream.telemetry import Telemetry

TOPICS = Topics("lag.")
NOW = datetime.now(UTC)


class TableWatermarks:
    """High watermarks from a dict; ``down`` makes the broker unreachable."""

    def __init__(self, highs: dict[tuple[str, int], int]) -> None:
        self.highs = highs
        self.down = False

    async def end_offsets(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        if self.down:
            raise KafkaConnectionError("broker away")
        return {tp: self.highs[(tp.topic, tp.partition)] for tp in tps}

    async def partition_counts(self, topics: Collection[str]) -> dict[str, int]:
        return {
            t: 1 + max(p for (tt, p) in self.highs if tt == t) for t in topics if t == TOPICS.views
        }

    async def close(self) -> None:
        return None


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def series(telemetry: Telemetry, name: str) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for family in telemetry.registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_lag_seconds() -> None:
    assert lag_seconds(0, 100.0, (10.0, None), 5.0) == 0.0
    assert lag_seconds(3, 100.0, (10.0, 40.0), 5.0) == 60.0
    assert lag_seconds(3, 100.0, (None, None), 5.0) == 95.0
    assert lag_seconds(3, 100.0, (150.0, None), 5.0) == 0.0  # clocks apart: never negative


async def test_lag_moves_while_nothing_is_applied_and_follows_ownership() -> None:
    ingestor = await offline_ingestor(MemoryStore(), TOPICS, [], NOW, 800)
    telemetry = ingestor._telemetry
    clock = Clock(NOW.timestamp())
    highs = {(TOPICS.views, 0): 0, (TOPICS.views, 1): 0}
    watermarks = TableWatermarks(highs)
    watch = LagWatch(
        ingestor=ingestor,
        telemetry=telemetry,
        topics=TOPICS.counted,
        watermarks=watermarks,
        clock=clock,
    )
    await ingestor.assign(TOPICS.views, 0)
    await ingestor.assign(TOPICS.views, 1)
    await watch.refresh()
    assert series(telemetry, "upsell_consumer_lag") == {"0": 0, "1": 0}
    assert series(telemetry, "upsell_consumer_lag_seconds") == {"0": 0, "1": 0}
    assert series(telemetry, "upsell_last_applied_timestamp_seconds")["0"] == NOW.timestamp()

    # records arrive, nothing is applied (Redis away): lag in records flat, in seconds rising
    highs[(TOPICS.views, 0)] = 30
    for step in range(1, 4):
        clock.now += 1.0
        await watch.refresh()
        assert series(telemetry, "upsell_consumer_lag")["0"] == 30
        assert series(telemetry, "upsell_consumer_lag_seconds")["0"] == step
    # the broker goes away too: the last high watermark stands, the seconds still rise
    watermarks.down = True
    clock.now += 10.0
    await watch.refresh()
    assert series(telemetry, "upsell_consumer_lag")["0"] == 30
    assert series(telemetry, "upsell_consumer_lag_seconds")["0"] == 13

    ingestor.revoke(TOPICS.views, 1)
    assert "1" not in series(telemetry, "upsell_consumer_lag"), "dropped at revoke"
    await watch.refresh()
    for name in (
        "upsell_consumer_lag",
        "upsell_consumer_lag_seconds",
        "upsell_last_applied_timestamp_seconds",
    ):
        assert set(series(telemetry, name)) == {"0"}, name


async def test_a_fetch_high_watermark_above_list_offsets_wins() -> None:
    """The embedded broker answers ListOffsets with the last batch's base offset + 1."""
    ingestor = await offline_ingestor(MemoryStore(), TOPICS, [], NOW, 800)
    watch = LagWatch(
        ingestor=ingestor,
        telemetry=ingestor._telemetry,
        topics=TOPICS.counted,
        watermarks=TableWatermarks({(TOPICS.views, 0): 1}),
        fetch_highwater=lambda _topic, _partition: 50,
    )
    await ingestor.assign(TOPICS.views, 0)
    await watch.refresh()
    assert series(ingestor._telemetry, "upsell_consumer_lag") == {"0": 50}
    registry = ingestor._telemetry.registry
    assert registry.get_sample_value("upsell_topic_partitions", {"topic": TOPICS.views}) == 1


async def test_the_lag_in_seconds_counts_from_the_last_applied_record_of_the_partition() -> None:
    """The engines note the last applied record's Kafka timestamp on the partition's state (not
    on Telemetry): a claim again keeps it, a revocation drops it with the partition."""
    ingestor = await offline_ingestor(MemoryStore(), TOPICS, [], NOW, 800)
    clock = Clock(NOW.timestamp())
    watch = LagWatch(
        ingestor=ingestor,
        telemetry=ingestor._telemetry,
        topics=TOPICS.counted,
        watermarks=TableWatermarks({(TOPICS.views, 0): 30}),
        clock=clock,
    )
    key = (TOPICS.views, 0)
    await ingestor.assign(*key)
    written_ms = int((NOW.timestamp() - 50) * 1000)  # written 50 s before the claim
    ingestor.note_last_record(*key, written_ms)
    clock.now += 5.0
    await watch.refresh()
    lag_s = series(ingestor._telemetry, "upsell_consumer_lag_seconds")
    # 30 records behind: at most as old as the last applied record, 55 s
    assert lag_s["0"] == pytest.approx(55, abs=0.01)

    await ingestor.assign(*key)  # claimed again (after an outage): the record's time stays
    assert ingestor.partitions[key].last_record_ms == written_ms
    ingestor.revoke(*key)
    await ingestor.assign(*key)  # a new claim after a revocation knows no record yet
    assert ingestor.partitions[key].last_record_ms is None
    ingestor.note_last_record(TOPICS.views, 1, written_ms)  # not owned: ignored
    assert (TOPICS.views, 1) not in ingestor.partitions
