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
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess
from stream.settings import Topics
from stream.state.redis import connect
from tests.support.e2e import api_workers, eventually, produce, wait_written, written
from tests.support.experiment_events import shop_message, view

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class Stack:
    def __init__(
        self, worker: WorkerProcess, api: WorkerProcess, topics: Topics, tokens: list[str]
    ) -> None:
        self.worker, self.api, self.topics = worker, api, topics
        self.token_a, self.token_b, self.admin, self.revocable = tokens


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
        [["shopA"], ["shopB"], ["*"], ["shopB"]],
        UPSELL_REDIS_API_CONNECTIONS="8",
        UPSELL_LIVE_MAX_STREAMS="5",
        UPSELL_TOKEN_MAX_STREAMS="3",
    )
    worker = ws[0]
    api_env = {**worker.env, "UPSELL_LIVE_MAX_LIFETIME_S": "2"}
    api = WorkerProcess(api_env, tmp, name="api", role="api")
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
    ``503 busy`` or ``429`` with Retry-After (never ``unavailable``), the token's share of 16
    requests in flight answers 429 past it while shopB's request is answered 200 (within 5 s on
    a loaded machine); 20 live streams of shopA beside it open 3 (its share) and the gauge stays
    within the cap of 5; the events produced meanwhile are all counted and the worker never logs
    a pause."""
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
        other = f"{stack.worker.url}/v1/shops/shopB/overview?period=today"

        async def other_tenant() -> tuple[int, dict[str, Any], str | None, float]:
            await asyncio.sleep(0.05)  # inside the flood
            return await get(session, other, stack.token_b)

        live = f"{stack.worker.url}/v1/shops/shopA/live?period=today"
        streams = await _open_streams(session, live, stack.token_a, 20)
        try:
            answers, _, b_answer = await asyncio.gather(
                asyncio.gather(*flood), producing, other_tenant()
            )
            gauge = await _gauge(session, stack.worker.url)
        finally:
            for r in streams:
                r.close()
        # the streams end on the server within its 1 s check: the next test starts from none
        left = await eventually(lambda: _gauge(session, stack.worker.url), lambda n: n == 0, 15)
    assert [r.status for r in streams].count(200) == 3 and gauge <= 5 and left == 0
    await wait_written(redis, base + 3000, "the views produced during the flood")
    await redis.aclose()
    statuses = [a[0] for a in answers]

    assert set(statuses) <= {200, 429, 503}, statuses
    refused = [a for a in answers if a[0] != 200]
    assert all(a[1]["code"] in ("busy", "too_many_requests") for a in refused), refused[:3]
    assert all(a[2] is not None for a in refused), refused[:3]
    assert statuses.count(429) > 0, "the flooding token got no 429"
    assert b_answer[0] == 200 and b_answer[3] < 5.0, b_answer
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


async def _open_streams(
    session: aiohttp.ClientSession, url: str, token: str, n: int
) -> list[aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"}
    return list(await asyncio.gather(*(session.get(url, headers=headers) for _ in range(n))))


async def _gauge(session: aiohttp.ClientSession, base: str) -> float:
    async with session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    line = next(x for x in text.splitlines() if x.startswith("upsell_live_streams "))
    return float(line.split()[1])


async def test_live_caps_are_taken_at_once_and_per_token(stack: Stack) -> None:
    """40 simultaneous streams of one token against a cap of 5 per process and 3 per token:
    3 open (before: all 40 opened, gauge 40), the rest answer 429 with Retry-After, the gauge
    never passes 5, and another token still opens its own stream."""
    url = f"{stack.worker.url}/v1/shops/shopA/live?period=today"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        flood = await _open_streams(session, url, stack.token_a, 40)
        try:
            statuses = [r.status for r in flood]
            assert statuses.count(200) == 3, statuses
            refused = [r for r in flood if r.status != 200]
            assert all(r.status == 429 and r.headers.get("Retry-After") for r in refused)
            assert await _gauge(session, stack.worker.url) <= 5
            other = await _open_streams(session, url.replace("shopA", "shopB"), stack.token_b, 1)
            assert other[0].status == 200
            other[0].close()
        finally:
            for r in flood:
                r.close()


def _revoke(tokens_file: Path, token_digest: str) -> None:
    kept = [x for x in tokens_file.read_text().splitlines() if not x.startswith(token_digest)]
    tokens_file.write_text("\n".join(kept) + "\n")


async def test_a_stream_ends_when_its_token_is_revoked(stack: Stack) -> None:
    """The token is asked again before every push: once its line leaves the tokens file the
    stream sends ``event: revoked`` and ends (before: it ran until the client left)."""
    from stream.http.api.auth import digest

    tokens_file = Path(stack.worker.env["UPSELL_API_TOKENS"])
    url = f"{stack.worker.url}/v1/shops/shopB/live?period=today"
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {stack.revocable}"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            await resp.content.readuntil(b"\n\n")  # retry:
            await asyncio.to_thread(_revoke, tokens_file, digest(stack.revocable))
            body = await asyncio.wait_for(resp.content.read(), 20)
    assert b"event: revoked" in body


async def test_a_stream_ends_after_its_lifetime_and_says_when_to_reconnect(stack: Stack) -> None:
    """The api process runs with UPSELL_LIVE_MAX_LIFETIME_S=2: the stream opens with
    ``retry: 2000`` and ends by itself (before: streams had no end)."""
    url = f"{stack.api.url}/v1/shops/shopB/live?period=today"
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {stack.token_b}"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            body = await asyncio.wait_for(resp.content.read(), 20)
    assert body.startswith(b"retry: 2000\n\n")
    assert 1.5 <= time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("group", "plain"),
    [("x%0ay", "x_y"), ("x%22%3B%20filename%3D%22evil.html", "x___filename__evil.html")],
)
async def test_a_group_id_cannot_break_the_download_header(
    stack: Stack, group: str, plain: str
) -> None:
    """Before: ``%0a`` made aiohttp raise on the header (empty reply, a traceback), ``";``
    added a second ``filename``. Now one sanitised ``filename`` and the id in ``filename*``."""
    url = f"{stack.worker.url}/v1/shops/shopA/groups/{group}?format=csv"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {stack.admin}"}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        header = resp.headers["Content-Disposition"]
        await resp.read()
    assert header.count("filename=") == 1 and f"-group-{plain}-" in header
    assert "filename*=UTF-8''" in header


async def test_an_oversized_request_line_or_token_is_refused_without_a_traceback(
    stack: Stack,
) -> None:
    """A request line over aiohttp's 8 KiB limit (with a write key in it) and a token over it:
    400 each, and the worker's log holds one warning each, no traceback, no key (before: an
    aiohttp traceback per request, the key in clear)."""
    key = "usk_" + "Q" * 40
    log = stack.worker.log_dir / f"{stack.worker.name}.log"
    before = len(await asyncio.to_thread(log.read_bytes))
    requests = [
        f"GET /v1/shops/shopA/overview?key={key}&pad={'x' * 9000} HTTP/1.1\r\nHost: a\r\n\r\n",
        f"GET /v1/shops/shopA/overview HTTP/1.1\r\nHost: a\r\n"
        f"Authorization: Bearer {key}{'y' * 9000}\r\n\r\n",
    ]
    for raw in requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.worker.port)
        writer.write(raw.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status_line.split()[1] in (b"400", b"431"), status_line
    await asyncio.sleep(0.5)
    text = (await asyncio.to_thread(log.read_bytes))[before:].decode(errors="replace")
    assert "Traceback" not in text and key not in text and "Q" * 40 not in text, text[-2000:]
