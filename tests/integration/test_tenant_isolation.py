"""One tenant can never stall another, nor counting (issue 32), from outside: worker and
``api`` subprocesses with auth on, shopA's token flooding the API while events are counted.

Before the separate pools, 400 concurrent 31-day timeseries requests of one token answered 299
``503 unavailable`` and the worker logged ``redis lost (... Too many connections): pausing
counting`` (one redis-py pool of 100 shared by the API and the engine)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
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
from tests.support.e2e import api_workers, eventually, produce, written
from tests.support.experiment_events import shop_message
from tests.support.flood import (
    FloodResult,
    Producing,
    Watched,
    dashboard,
    flood_in_a_process,
    produce_at_full_rate,
    watch,
)
from tests.support.metrics import scrape, total

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
        # a token's request share well under the API pool (docs/operations.md, "Sizing the
        # pools and shares"): with a pool of 8 below the share of 16, the flooding token took
        # every connection and the other tenant's dashboard was answered 503 busy (7 of 58)
        UPSELL_REDIS_API_CONNECTIONS="24",
        UPSELL_TOKEN_MAX_REQUESTS="6",
        UPSELL_LIVE_MAX_STREAMS="5",
        UPSELL_TOKEN_MAX_STREAMS="3",
    )
    worker = ws[0]
    # the api process: streams end after 2 s; one API connection, waited for 1 ms (a full pool)
    api_env = {
        **worker.env,
        "UPSELL_LIVE_MAX_LIFETIME_S": "2",
        "UPSELL_REDIS_API_CONNECTIONS": "1",
        "UPSELL_API_BUSY_WAIT_MS": "1",
    }
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


async def get(
    session: aiohttp.ClientSession, url: str, token: str
) -> tuple[int, dict[str, Any], str | None, float]:
    """Status, the body's error (or {}), Retry-After, seconds."""
    started = time.perf_counter()
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return resp.status, error, resp.headers.get("Retry-After"), time.perf_counter() - started


# How long the flood lasts (its bounds are below the test) and the shops whose views count.
FLOOD_S = 20.0
SHOPS = ["shopA", "shopB", "shopC", "shopD", "shopE", "shopF"]


async def test_a_flood_of_one_token_while_counting_at_full_rate(
    stack: Stack, redis_server: Any
) -> None:
    """For FLOOD_S seconds shopA's token floods the worker's API (200 request loops over every
    route, heavy queries and exports included, and 30 live-stream loops, from a process of its
    own) while a producer keeps the same worker counting at its full rate (always a backlog of
    up to 20,000 views of six shops) and shopB's dashboard reads beside them. Counting never
    pauses (no Redis error, no "pausing counting", the checkpoints never stand still while
    events wait), every view produced is in the API's totals soon after the producer stops,
    shopB is answered 200 throughout within the bounds below, shopA gets 429s (each refusal
    429 or ``503 busy`` with Retry-After), and the live-stream gauge never passes its cap.

    Before the separate pools (one-shot version of this flood): 400 concurrent timeseries of
    shopA answered 299 ``503 unavailable`` and the worker logged ``redis lost (... Too many
    connections): pausing counting`` (one redis-py pool shared by the API and the engine)."""
    bootstrap = stack.worker.env["UPSELL_KAFKA_BOOTSTRAP"]
    await produce(bootstrap, stack.topics, [shop_message(s, "UTC", "USD") for s in SHOPS])
    redis = connect(redis_server.url, cluster=False)
    at = datetime.now(UTC) - timedelta(minutes=5)
    shops = f"{stack.worker.url}/v1/shops"
    done, producing, watched = asyncio.Event(), Producing(), Watched()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def probe() -> dict[str, int]:
            return await _views(session, shops, stack.admin, at)

        # every shop's settings counted first (-1: not answered 200 yet)
        before = await eventually(probe, lambda got: min(got.values()) >= 0, 30)
        assert min(before.values()) >= 0, before
        producer = asyncio.create_task(
            produce_at_full_rate(
                bootstrap, stack.topics, SHOPS, at, lambda: written(redis), done, producing
            )
        )
        watcher = asyncio.create_task(
            watch(
                session,
                stack.worker.url,
                lambda: written(redis),
                lambda: producing.sent,
                done,
                watched,
            )
        )
        board = asyncio.create_task(dashboard(session, f"{shops}/shopB", stack.token_b, done))
        try:
            flood = await flood_in_a_process(f"{shops}/shopA", stack.token_a, FLOOD_S)
        finally:
            done.set()  # the producer, the watcher and the dashboard end with the flood
        stopped = time.monotonic()
        await asyncio.gather(producer, watcher)
        answers = await board
        want = {s: before[s] + producing.per_shop[s] for s in SHOPS}
        seen = await eventually(probe, want.__eq__, 60)
        visible_s = time.monotonic() - stopped
        left = await eventually(lambda: _gauge(stack.worker), lambda n: n == 0, 15)
    await redis.aclose()
    _report(watched, producing, answers, flood, visible_s)

    # counting at full rate, never paused
    assert producing.sent >= 20_000, f"only {producing.sent} views produced"
    backlog = [sent - counted for _t, counted, sent, *_ in watched.samples[4:]]
    assert sum(b > 0 for b in backlog) >= 0.9 * len(backlog), "the worker waited for events"
    assert max(s[4] for s in watched.samples) == 0, "Redis errors while counting"
    assert min(s[5] for s in watched.samples) == 1, "upsell_redis_up went to 0"
    assert watched.longest_stall() < STALL_S, f"counting stood still {watched.longest_stall()} s"
    log = (stack.worker.log_dir / f"{stack.worker.name}.log").read_text()
    assert "pausing counting" not in log and "Too many connections" not in log
    # every event visible soon after the producer stopped
    assert seen == want and visible_s < VISIBLE_S, (seen, want, visible_s)
    # the other tenant: always 200, quick
    assert {status for status, _ in answers} == {200}, Counter(s for s, _ in answers)
    times = sorted(t for _, t in answers)
    assert times[len(times) // 2] < B_MEDIAN_S, times
    assert times[int(len(times) * 0.95)] < B_P95_S and times[-1] < B_MAX_S, times[-5:]
    # the flooding tenant: 429s, each refusal with Retry-After; streams within the caps
    assert flood.statuses[429] > 0 and set(flood.statuses) <= {200, 429, 503}, flood
    assert set(flood.refusal_codes) <= {"429 too_many_requests", "503 busy"}, flood
    assert flood.without_retry_after == 0 and flood.unanswered == 0, flood
    # the gauge counts shopA's streams alone: within its share (3), so within the cap (5);
    # the flooder's own count can pass 3 by a stream the server ended but it has not yet read
    assert flood.streams_opened > 0, flood
    assert max(s[3] for s in watched.samples) <= 3 and left == 0


# Bounds of the test above. Measured 2026-12-07 on the shared 2-core machine (load 6 to 13,
# 5 runs): the worker counted 10,000-20,500 events/s through the flood (27,000/s before it)
# with a backlog of 18,000-21,000 at the median sample; its checkpoints stood still at most
# 0.47 s; every view was in the API 0.1-1.1 s after the producer stopped; shopB's dashboard
# requests took p50 54-275 ms, p95 0.5-1.3 s, max 0.8-2.5 s. They wait on the event loop that
# folds batches in 250-record slices (~12 ms each at 20,000 events/s) and answers the flood
# (at most 6 requests of shopA in flight, its 429s cost well under a millisecond), and for
# the CPU the machine's load leaves the worker. With one pool of 8 for counting and the API
# (redis-py's plain pool, as before the split) the same run logged "pausing counting" 18
# times, counted 5,800/s, stood still 2.3 s, and the test failed on the Redis errors.
STALL_S = 5.0
VISIBLE_S = 30.0  # at most 26,000 events left (lead + one batch): ~9 s at 3,000/s
B_MEDIAN_S = 1.0
B_P95_S = 2.5
B_MAX_S = 5.0


async def _views(
    session: aiohttp.ClientSession, shops: str, token: str, at: datetime
) -> dict[str, int]:
    """banner_views of each of SHOPS on ``at``'s day (all shops in UTC), read with ``token``."""
    day = at.date().isoformat()
    out: dict[str, int] = {}
    for shop in SHOPS:
        url = f"{shops}/{shop}/overview?period=custom&from={day}&to={day}"
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json(content_type=None)
            out[shop] = body["metrics"]["banner_views"] if resp.status == 200 else -1
    return out


def _report(
    watched: Watched,
    producing: Producing,
    answers: list[tuple[int, float]],
    flood: FloodResult,
    visible_s: float,
) -> None:
    """The figures a failure (or ``-s``) shows."""
    first, last = watched.samples[0], watched.samples[-1]
    rate = (last[1] - first[1]) / max(1e-9, last[0] - first[0])
    times = sorted(t for _, t in answers)
    backlog = sorted(sent - counted for _t, counted, sent, *_ in watched.samples)
    print(
        f"produced {producing.sent:,}, counted {rate:,.0f}/s, backlog min {backlog[0]:,} median "
        f"{backlog[len(backlog) // 2]:,} ({len(backlog)} samples), longest stall "
        f"{watched.longest_stall():.2f} s, all visible {visible_s:.1f} s after; other tenant "
        f"{len(times)} answers, p50 {times[len(times) // 2] * 1000:.0f} ms, p95 "
        f"{times[int(len(times) * 0.95)] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms; flood "
        f"{dict(flood.statuses)} {dict(flood.refusal_codes)}, {flood.streams_opened} streams "
        f"opened ({flood.streams_broken} broke off), {flood.unanswered} unanswered, gauge at "
        f"most {max(s[3] for s in watched.samples)}"
    )


async def test_a_full_api_pool_answers_busy_never_unavailable(stack: Stack) -> None:
    """The api process has one API connection, waited for 1 ms: 60 concurrent timeseries
    requests are answered 200, 429 (the token's share of 6 in flight) or ``503 busy`` with
    Retry-After, never ``503 unavailable`` nor a connection error (before the bounded pools,
    400 concurrent requests answered 299 ``503 unavailable``)."""
    url = f"{stack.api.url}/v1/shops/shopB/timeseries?period=this_month&interval=day"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        answers = await asyncio.gather(*(get(session, url, stack.admin) for _ in range(60)))
    codes = Counter(f"{a[0]} {a[1].get('code', '')}".strip() for a in answers)
    assert set(codes) <= {"200", "429 too_many_requests", "503 busy"}, codes
    assert codes["503 busy"] > 0 and codes["200"] > 0, codes
    assert all(a[2] is not None for a in answers if a[0] != 200)


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


async def _gauge(w: WorkerProcess) -> float:
    return total(await asyncio.to_thread(scrape, w), "upsell_live_streams")


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
            assert await _gauge(stack.worker) <= 5
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
