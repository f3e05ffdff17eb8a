"""Period sums are exact integers whatever the totals: Lua's doubles would round above 2^53."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from stream.state import keys
from stream.state.reader import StateReader
from stream.state.redis import connect

pytestmark = [pytest.mark.integration]


async def test_sums_over_days_are_exact_above_2_to_the_53(redis_url: str) -> None:
    client = connect(redis_url, cluster=False)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(800)]
    stored = {
        "v": [2**53 + 1 + i for i in range(len(days))],
        "r:USD": [2**63 - 1 - 7 * i for i in range(len(days))],
        "n:EUR": [-(2**62) + 3 * i if i % 2 else 2**61 + i for i in range(len(days))],
        "c": [i % 10 for i in range(len(days))],
    }
    try:
        async with client.pipeline(transaction=False) as pipe:
            for i, day in enumerate(days):
                pipe.hset(
                    keys.day("big", day.isoformat()),
                    mapping={field: values[i] for field, values in stored.items()},
                )
            await pipe.execute()
        got = await StateReader(client).sum_days("big", days)
    finally:
        await client.aclose()
    want = {field: sum(values) for field, values in stored.items()}
    assert got == want, {f: got.get(f, 0) - want[f] for f in want}
