"""Maximal amounts, from outside: upgrades carrying the documented maximum (10^12 - 1 minor
units, odd so no total is a round double) sum exactly past 2^53 over HTTP, and an amount above
the maximum is dead-lettered as bad_value, for both engines (tests/support/maximal_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from tests.support.maximal_runs import maximal_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_maximal_amounts_sum_exactly_and_larger_ones_are_dead_lettered(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    await maximal_run(engine, broker.bootstrap, redis_url, created_topics, tmp_path, 9_100)
