"""Each token's share of a process (stream/http/api/limits.py): checked and taken in one step,
429 past it while other tokens are served; the process-wide heavy cap stays 503."""

from __future__ import annotations

import pytest

from stream.http.api.errors import ApiError
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
