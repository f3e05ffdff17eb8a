"""Waiting for a worker's Redis to hold exactly the reference aggregator's state, and checking
that it then stays there: the end-to-end exactly-once tests on either broker."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tests.support import state_snapshot
from tests.support.e2e import eventually
from tests.support.expected_state import ExpectedState, Sent


def as_items(sent: list[Sent]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(s.kind, s.key, s.value) for s in sent]


async def wait_for_state(redis: Redis, expected: ExpectedState, timeout_s: float) -> None:
    want = expected.counters()
    got = await eventually(lambda: state_snapshot.counters(redis), lambda c: c == want, timeout_s)
    assert got == want, "\n".join(state_snapshot.diff(want, got))
    # unique_upgraders is a HyperLogLog: approximate by contract (<= 2 % error)
    hll, exact = await state_snapshot.upgraders(redis), expected.upgrader_counts()
    assert set(hll) == set(exact)
    for key, n in exact.items():
        assert abs(hll[key] - n) <= max(1, 0.02 * n), (key, hll[key], n)
    assert await state_snapshot.ledger_sizes(redis) == expected.ledger_sizes()


async def settle(redis: Redis, expected: ExpectedState, seconds: float = 3.0) -> None:
    """Totals must not move after they matched: nothing counted twice later."""
    await asyncio.sleep(seconds)
    got = await state_snapshot.counters(redis)
    assert got == expected.counters(), "\n".join(state_snapshot.diff(expected.counters(), got))
