"""One tenant can never stall another, nor counting (issue 32), from outside: worker and
``api`` subprocesses with auth on, shopA's token flooding the API while events are counted.

Before the separate pools, 400 concurrent 31-day timeseries requests of one token answered 299
``503 unavailable`` and the worker logged ``redis lost (... Too many connections): pausing
counting`` (one redis-py pool of 100 shared by the API and the engine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess
from stream.settings import Topics
from stream.state.redis import connect
from tests.experiment_events import shop_message, view
from tests.integration.e2e import api_workers, produce, wait_written, written

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class Stack:
    def __init__(
        self, worker: WorkerProcess, api: WorkerProcess, topics: Topics, tokens: list[str]
    ) -> None:
        self.worker, self.api, self.topics = worker, api, topics
        self.token_a, self.token_b, self.admin = tokens


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("tenants")
    ws, topics, tokens = api_workers(
        broker.bootstrap,
        redis_server.url,
        tmp,
        "tenants.",
        1,
        [["shopA"], ["shopB"], ["*"]],
        UPSELL_REDIS_API_CONNECTIONS="8",
    )
    worker = ws[0]
    api = WorkerProcess(worker.env, tmp, name="api", role="api")
    try:
        worker.start()
        api.start()
        worker.wait_ready()
        api.wait_ready()
        yield Stack(worker, api, topics, tokens)
    finally:
        api.stop()
        worker.stop()


def views(shop: str, n: int, first: int = 0) -> list[tuple[str, bytes, bytes]]:
    at = datetime.now(UTC) - timedelta(minutes=5)
    return [view(shop, f"{shop}-{i}", at, "g1", "a") for i in range(first, first + n)]


async def get(
    session: aiohttp.ClientSession, url: str, token: str
) -> tuple[int, dict[str, Any], str | None, float]:
    """Status, the body's error (or {}), Retry-After, seconds."""
    started = time.perf_counter()
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return resp.status, error, resp.headers.get("Retry-After"), time.perf_counter() - started


async def test_a_flood_of_one_token_gets_busy_answers_and_never_pauses_counting(
    stack: Stack, redis_server: Any
) -> None:
    """400 concurrent 31-day timeseries of shopA against an API pool of 8: each answer is 200,
    ``503 busy`` or ``429`` with Retry-After (never ``unavailable``); the events produced
    meanwhile are all counted and the worker never logs a pause."""
    await produce(
        stack.worker.env["UPSELL_KAFKA_BOOTSTRAP"],
        stack.topics,
        [shop_message("shopA", "UTC", "USD"), shop_message("shopB", "UTC", "USD")],
    )
    redis = connect(redis_server.url, cluster=False)
    base = await written(redis)
    url = f"{stack.worker.url}/v1/shops/shopA/timeseries?period=this_month&interval=day"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        flood = [get(session, url, stack.token_a) for _ in range(400)]
        producing = produce(
            stack.worker.env["UPSELL_KAFKA_BOOTSTRAP"], stack.topics, views("shopA", 3000)
        )
        answers, _ = await asyncio.gather(asyncio.gather(*flood), producing)
    await wait_written(redis, base + 3000, "the views produced during the flood")
    await redis.aclose()
    statuses = [a[0] for a in answers]

    assert set(statuses) <= {200, 429, 503}, statuses
    refused = [a for a in answers if a[0] != 200]
    assert all(a[1]["code"] in ("busy", "too_many_requests") for a in refused), refused[:3]
    assert all(a[2] is not None for a in refused), refused[:3]
    log = (stack.worker.log_dir / f"{stack.worker.name}.log").read_text()
    assert "pausing counting" not in log and "Too many connections" not in log


async def test_the_api_role_serves_without_counting(stack: Stack) -> None:
    """``upsell-stream api`` answers /v1 and the dashboard from Redis; /readyz is 200 and
    /readyz/counting 503 (it never joins the group)."""
    async with aiohttp.ClientSession() as session:
        status, error, _, _ = await get(
            session, f"{stack.api.url}/v1/shops/shopB/overview?period=today", stack.token_b
        )
        assert status == 200, error
        status, error, _, _ = await get(
            session, f"{stack.api.url}/v1/shops/shopA/overview?period=today", stack.token_b
        )
        assert status == 403 and error["code"] == "forbidden"
        async with session.get(f"{stack.api.url}/readyz") as resp:
            assert resp.status == 200
        async with session.get(f"{stack.api.url}/readyz/counting") as resp:
            assert resp.status == 503
        async with session.get(f"{stack.api.url}/") as resp:
            assert resp.status == 200
    assert "partitions" not in stack.api.tail(200).lower()
