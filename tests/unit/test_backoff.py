"""stream.backoff: the waits of a retry loop double from the first up to the cap."""

from __future__ import annotations

import asyncio
import time

import pytest

from stream.backoff import Backoff


def test_waits_double_up_to_the_cap_and_reset() -> None:
    backoff = Backoff(first_s=0.001, max_s=0.004)
    seen = []

    async def run() -> None:
        for _ in range(4):
            seen.append(backoff.delay)
            await backoff.wait()

    asyncio.run(run())
    assert seen == [0.001, 0.002, 0.004, 0.004], seen
    backoff.reset()
    assert backoff.delay == 0.001


def test_a_wait_sleeps_its_delay() -> None:
    backoff = Backoff(first_s=0.05, max_s=0.05)
    started = time.monotonic()
    asyncio.run(backoff.wait())
    assert time.monotonic() - started >= 0.045, "the wait returned before its delay"


def test_first_delay_must_be_positive_and_at_most_the_cap() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=2.0, max_s=1.0)
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=0.0, max_s=1.0)
