"""The web layer every server stands on (stream/web/): the operator routes answer as contract
§4 and §6 say, whoever's readiness they serve, and a readiness check is False, not an error,
when Redis is gone or slow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from redis.exceptions import ConnectionError as RedisConnectionError

from stream.web.ops_routes import install_ops_routes
from stream.web.readiness import Checks, answers_within

Client = TestClient[web.Request, web.Application]


class FakeReadiness:
    def __init__(self) -> None:
        self.ready = True

    async def check(self) -> Checks:
        return self.ready, {"redis": self.ready}


@pytest.fixture
async def served() -> AsyncIterator[tuple[Client, FakeReadiness]]:
    registry = CollectorRegistry()
    Counter("upsell_test_requests", "a metric of the test's registry", registry=registry).inc()
    readiness = FakeReadiness()
    app = web.Application()
    install_ops_routes(app, readiness, registry)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, readiness
    finally:
        await client.close()


async def test_ops_routes_answer_as_the_contract_says(
    served: tuple[Client, FakeReadiness],
) -> None:
    client, readiness = served
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok"}

    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ready", "checks": {"redis": True}}
    readiness.ready = False
    unready = await client.get("/readyz")
    assert unready.status == 503
    assert await unready.json() == {"status": "not_ready", "checks": {"redis": False}}

    metrics = await client.get("/metrics")
    assert metrics.status == 200 and metrics.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "upsell_test_requests_total 1.0" in await metrics.text()
    # /readyz/counting is the worker's and the api role's (stream/http/application.py)
    assert (await client.get("/readyz/counting")).status == 404


async def test_a_ping_that_fails_or_hangs_is_not_ready() -> None:
    async def answers() -> bool:
        return True

    async def refused() -> bool:
        raise RedisConnectionError("connection refused")

    async def hangs() -> bool:
        await asyncio.sleep(60)
        return True

    assert await answers_within(answers, 1.0) is True
    assert await answers_within(refused, 1.0) is False
    started = time.monotonic()
    assert await answers_within(hangs, 0.05) is False
    assert time.monotonic() - started < 5  # the timeout, not the ping, ends the wait
