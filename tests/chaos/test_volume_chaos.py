"""Long version of the maximal amounts (``make chaos``): upgrades of the documented maximum at
volume, for both engines; the sums come out exact over HTTP far past 2^53, the amounts above the
maximum are dead-lettered, and the figures are printed (tests/support/maximal_runs.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from tests.support.maximal_runs import maximal_run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

UPGRADES = {"batch": 200_000, "faust": 50_000}  # Faust counts ~10x slower per event


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_maximal_amounts_at_volume(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    n = UPGRADES[engine]
    await maximal_run(engine, broker.bootstrap, redis_url, created_topics, tmp_path, n)
