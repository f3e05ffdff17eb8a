from typing import Any, cast

from stream.engines.batch.positions import Positions
from stream.engines.log_end_watch import LogEndWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_position_within_the_log_is_never_a_restart() -> None:
    clock = Clock()
    watch = LogEndWatch(grace_s=3, clock=clock)
    watch.positioned("p0", 3000)
    for high in (3000, 3500, 10_000):
        clock.now += 10
        assert watch.high_watermark("p0", high) is False


def test_restart_only_after_the_grace_period() -> None:
    clock = Clock()
    watch = LogEndWatch(grace_s=3, clock=clock)
    watch.positioned("p0", 3000)
    assert watch.high_watermark("p0", 0) is False
    clock.now += 2.9
    assert watch.high_watermark("p0", 500) is False
    clock.now += 0.2
    assert watch.high_watermark("p0", 500) is True


def test_records_arriving_reset_the_grace_period() -> None:
    clock = Clock()
    watch = LogEndWatch(grace_s=3, clock=clock)
    watch.positioned("p0", 3000)
    assert watch.high_watermark("p0", 2990) is False
    clock.now += 2
    watch.positioned("p0", 3001)  # records came in
    clock.now += 2
    assert watch.high_watermark("p0", 2990) is False
    clock.now += 3
    assert watch.high_watermark("p0", 2990) is True


def test_unknown_high_watermark_or_position_says_nothing() -> None:
    clock = Clock()
    watch = LogEndWatch(grace_s=0, clock=clock)
    assert watch.high_watermark("p0", 0) is False  # no position yet
    watch.positioned("p0", 10)
    assert watch.high_watermark("p0", None) is False
    watch.forget("p0")
    assert watch.next_offset("p0") is None
    assert watch.high_watermark("p0", 0) is False


def test_out_of_range_answers_follow_the_same_grace() -> None:
    clock = Clock()
    watch = LogEndWatch(grace_s=3, clock=clock)
    watch.positioned("p1", 50)
    assert watch.out_of_range("p1") is False
    clock.now += 3
    assert watch.out_of_range("p1") is True


async def test_the_log_end_check_after_the_engine_stopped_its_consumer_does_nothing() -> None:
    """The batch loop's last turn ends with this check while the engine's stop has already
    closed and dropped the consumer: it returns (it asserted before, and every shutdown logged
    'BatchEngine: Crashed reason=AssertionError()')."""
    positions = Positions(
        ingestor=cast(Any, None), telemetry=cast(Any, None), health=cast(Any, None)
    )
    positions.consumer = None
    await positions.check_log_ends()
    assert positions.consumer is None
