"""Long versions of the Redis-went-back tests (``make chaos``): a single Redis sent back six
times mid-stream, in place and by a restart from an older RDB, and each primary of a Redis
Cluster brought back older in turn, for both engines. The worker is never restarted, the totals
over HTTP come out exact, and the figures are printed (tests/support/rewind_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.redis_cluster import LocalRedisCluster
from stream.settings import Topics
from tests.support.rewind_runs import older_primaries_run, rewound_run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

# Faust counts ~10x slower per event (shared/FACTS.md); both volumes run well past the faults.
EVENTS = {"batch": 200_000, "faust": 60_000}


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_redis_sent_back_six_times_mid_stream(
    engine: str, broker: EmbeddedBroker, created_topics: Topics, tmp_path: Path
) -> None:
    figures = await rewound_run(
        engine, broker.bootstrap, created_topics, tmp_path, events=EVENTS[engine], rewinds=6
    )
    assert figures.writes_lost >= 6 * 4_000, figures.line()


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_every_cluster_primary_brought_back_older_in_turn(
    engine: str,
    broker: EmbeddedBroker,
    cluster: LocalRedisCluster,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    figures = await older_primaries_run(
        engine,
        broker.bootstrap,
        cluster,
        created_topics,
        tmp_path,
        events=EVENTS[engine],
        primaries=[*cluster.ports, cluster.ports[0]],
    )
    assert figures.writes_lost >= 4 * 5_000, figures.line()
