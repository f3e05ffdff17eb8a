"""Redis that comes back older than what the worker last wrote, while events flow and the worker
keeps running: restored in place from an older snapshot (clients stay connected, as after a
failover to a lagging replica) and restarted from an older RDB. Events in through Kafka, numbers
out of HTTP, compared with the reference aggregator (tests/support/rewind_runs.py; the long
version is in tests/chaos/test_rewind_chaos.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from tests.support.rewind_runs import rewound_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Both engines. The Faust engine reads the lost range beside Faust (stream/engines/faust/
# repair.py). Its delivery once stalled after the second rewind (docs/state.md, item 8);
# not seen in 9 runs on the current code (3 before Faust's bookkeeping followed the engine's
# seeks, 6 after). The Faust run (126 s of make test's 2,728 test-seconds at load 6) moved to
# make slow-ci and make chaos, beside the long version's six rewinds per engine (issue 31:
# make test's wall time).
ENGINES = ["batch", pytest.param("faust", marks=[pytest.mark.slow, pytest.mark.ci])]


@pytest.mark.parametrize("engine", ENGINES)
async def test_redis_restored_from_older_snapshots_twice_mid_stream(
    engine: str, broker: EmbeddedBroker, created_topics: Topics, tmp_path: Path
) -> None:
    await rewound_run(engine, broker.bootstrap, created_topics, tmp_path, events=70_000, rewinds=2)
