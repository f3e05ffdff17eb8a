"""Mixed versions: a worker records its state format in Redis, and a worker that finds a newer
one (a later version migrated the state, then a rollback brought this one back) does not count,
while its API stays ready."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from redis import Redis

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import http_get
from stream.settings import Topics
from stream.state import keys
from stream.state.redis import STATE_FORMAT
from tests.support.e2e import produce, worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def view(n: int) -> tuple[str, bytes | None, bytes | None]:
    event = {
        "event_id": f"mv{n}",
        "shop_id": "s1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "group_id": "g",
        "variation_id": "a",
    }
    return ("view", b"s1", orjson.dumps(event))


def counted(redis: Redis) -> int:
    day = keys.day("s1", datetime.now(UTC).date().isoformat())
    return int(redis.hget(day, "v") or 0)


def test_a_newer_state_format_stops_an_older_worker_from_counting(
    broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    redis = Redis.from_url(redis_url)
    (w,) = workers(worker_env(broker.bootstrap, redis_url, created_topics, "batch"), tmp_path, 1)
    try:
        w.start().wait_ready()
        assert redis.get(keys.STATE_FORMAT) == str(STATE_FORMAT).encode()
        asyncio.run(produce(broker.bootstrap, created_topics, [view(1)]))
        deadline = time.monotonic() + 30
        while counted(redis) < 1:
            assert time.monotonic() < deadline, f"the first view was not counted:\n{w.tail()}"
            time.sleep(0.2)
        w.stop()

        redis.set(keys.STATE_FORMAT, STATE_FORMAT + 1)  # a later version migrated the state
        w.start()
        deadline = time.monotonic() + 30
        while "state format" not in w.tail():
            assert time.monotonic() < deadline, f"no refusal logged:\n{w.tail()}"
            time.sleep(0.2)
        status, body = http_get(f"{w.url}/readyz/counting")
        assert status == 503 and json.loads(body)["checks"]["state_format"] is False
        assert http_get(f"{w.url}/readyz")[0] == 200, "the API still answers"
        asyncio.run(produce(broker.bootstrap, created_topics, [view(2)]))
        time.sleep(5)
        assert counted(redis) == 1, "an older worker counted into a newer state format"
        assert redis.get(keys.STATE_FORMAT) == str(STATE_FORMAT + 1).encode()
    finally:
        w.stop()
        redis.close()
