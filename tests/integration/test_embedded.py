"""The embedded stack really starts, answers, restarts Redis with its data, and stops clean."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.settings import Topics
from tests.support.e2e import produce, read_topic

pytestmark = pytest.mark.integration


def _gone(pid: int | None) -> bool:
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_broker_round_trip(broker: EmbeddedBroker, created_topics: Topics) -> None:
    sent = await produce(
        broker.bootstrap,
        created_topics,
        [("view", b"s1", f'{{"n": {i}}}'.encode()) for i in range(100)],
    )
    assert sent == 100
    got = await read_topic(broker.bootstrap, created_topics.views)
    assert sorted(int(r.value.decode()[6:-1]) for r in got) == list(range(100))


def test_redis_restart_keeps_aof_data_and_stop_leaves_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    server = EmbeddedRedis(tmp_path, appendonly=True).start()
    assert time.monotonic() - started < 30
    assert server.port != 6379
    client = redis.Redis(port=server.port)
    client.set("k", "v")
    client.close()
    server.restart()
    client = redis.Redis(port=server.port)
    assert client.get("k") == b"v"
    client.close()
    pid = server.pid
    server.stop()
    assert _gone(pid)


def test_broker_starts_fast_and_stops_clean(tmp_path: Path) -> None:
    started = time.monotonic()
    b = EmbeddedBroker(tmp_path).start()
    assert time.monotonic() - started < 30
    pid = b.pid
    b.stop()
    assert _gone(pid)
