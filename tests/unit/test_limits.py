"""Each token's share of a process (stream/http/api/limits.py): checked and taken in one step,
429 past it while other tokens are served; the process-wide heavy cap stays 503."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from stream.http.api.errors import ApiError
from stream.http.api.handlers import Handlers
from stream.http.api.limits import HEAVY, REQUESTS, STREAMS, HeavyQueries, Shares


def shares() -> Shares:
    return Shares({REQUESTS: 2, HEAVY: 1, STREAMS: 1})


def test_a_token_past_its_share_gets_429_while_another_is_served() -> None:
    s = shares()
    s.take(REQUESTS, "a")
    s.take(REQUESTS, "a")
    with pytest.raises(ApiError) as refused:
        s.take(REQUESTS, "a")
    assert refused.value.status == 429 and refused.value.code == "too_many_requests"
    assert refused.value.headers["Retry-After"] == "1"
    s.take(REQUESTS, "b")  # another token's share is its own
    s.give(REQUESTS, "a")
    s.take(REQUESTS, "a")  # given back, taken again
    assert s.held(REQUESTS, "a") == 2 and s.held(REQUESTS, "b") == 1


def test_without_a_token_only_the_process_caps_apply() -> None:
    s = shares()
    for _ in range(10):
        s.take(REQUESTS, None)
    assert s.held(REQUESTS, None) == 0


def test_heavy_slots_per_token_then_per_process() -> None:
    heavy = HeavyQueries(2, shares())
    assert heavy.enter(10, "a") is False  # not heavy: no slot
    assert heavy.enter(60, "a") is True
    with pytest.raises(ApiError) as own_share:
        heavy.enter(60, "a")
    assert own_share.value.status == 429
    assert heavy.enter(60, "b") is True
    with pytest.raises(ApiError) as process:
        heavy.enter(60, "c")
    assert (process.value.status, process.value.code) == (503, "busy")
    heavy.leave("a")
    assert heavy.enter(60, "c") is True and heavy.running == 2


async def test_a_group_detail_takes_its_heavy_slot_in_the_tokens_share() -> None:
    """A group's detail reads the experiment's whole run: its slot counts in the token's share,
    as every other heavy query's does, and the limits middleware gives it back to that token
    (before, the detail took it for no token, so the give-back freed a share it never held)."""
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)  # the injected clock: any day serves

    class Reader:
        async def experiment_start(self, shop: str, group: str) -> date:
            return now.date() - timedelta(days=40)  # a run of 41 days: heavy

        async def sum_exposures(self, *args: object) -> dict[str, dict[str, float]]:
            return {}

        async def sum_variations(self, *args: object) -> dict[str, dict[str, float]]:
            return {}

    s = shares()
    handlers = Handlers(
        cast(Any, Reader()), lambda: now, 800, max_range_days=400, heavy=HeavyQueries(4, s)
    )
    shop = SimpleNamespace(shop_id="shopA", timezone="UTC", experiments={})
    request: dict[str, object] = {"owner": "a"}
    run, _, _ = await handlers._run(cast(Any, request), cast(Any, shop), "g")
    assert run.days == 41 and request["heavy"] is True
    assert s.held(HEAVY, "a") == 1
