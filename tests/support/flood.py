"""One tenant flooding the API while a producer keeps a worker counting at its full rate
(issue 32, point 7): the flooder in a process of its own, the producer, the other tenant's
dashboard and a watcher of the worker's /metrics, each a task of the test."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from stream.kafka.clients import make_producer
from stream.settings import Topics
from tests.support.experiment_events import view

# The flooding token's requests: every route, heavy queries (over 31 days) and exports included.
FLOOD_PATHS = (
    "/overview?period=year_to_date&compare=previous_year",
    "/timeseries?period=this_month&interval=day",
    "/groups?period=last_quarter&compare=previous_period",
    "/groups/g1?period=this_month&format=csv",
    "/conversions?period=this_month",
    "/overview?period=today",
    "/timeseries?period=last_year&interval=week",
)
# The other tenant's dashboard: its default view, one request after another.
DASHBOARD_PATHS = (
    "/overview?period=today&compare=previous_period",
    "/groups?period=today",
    "/groups/g1?period=today",
    "/timeseries?period=this_month&interval=day",
)


@dataclass
class FloodResult:
    """What the flooding token was answered: statuses, the refusals' codes, refusals without
    Retry-After, requests that got no answer (a connection error), how many live streams it
    opened and how many of those broke off (not ended by the server, nor closed by it)."""

    statuses: Counter[int] = field(default_factory=Counter)
    refusal_codes: Counter[str] = field(default_factory=Counter)
    without_retry_after: int = 0
    unanswered: int = 0
    streams_opened: int = 0
    streams_broken: int = 0


async def _flood(
    shop_url: str, token: str, seconds: float, loops: int, streams: int
) -> FloodResult:
    """``loops`` request loops over FLOOD_PATHS and ``streams`` live-stream loops for
    ``seconds``. A loop sends its next request as soon as one is answered and after a 429 or
    503 waits the Retry-After it was given (shares bound what a token holds at once; a client
    that ignores Retry-After too is a request rate to cap at the balancer)."""
    out = FloodResult()
    end = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:

        def tally(resp: aiohttp.ClientResponse, body: Any) -> float:
            """Count one answer; the seconds to wait before the next request."""
            out.statuses[resp.status] += 1
            if resp.status == 200:
                return 0.0
            error = body.get("error", {}) if isinstance(body, dict) else {}
            out.refusal_codes[f"{resp.status} {error.get('code')}"] += 1
            retry = resp.headers.get("Retry-After")
            out.without_retry_after += retry is None
            return float(retry or 1)

        async def loop(i: int) -> None:
            while time.monotonic() < end:
                pause = 1.0
                try:
                    async with s.get(shop_url + FLOOD_PATHS[i % len(FLOOD_PATHS)]) as resp:
                        pause = tally(resp, _json(await resp.read()))
                except (aiohttp.ClientError, TimeoutError):
                    out.unanswered += 1
                await asyncio.sleep(min(pause, max(0.0, end - time.monotonic())))

        async def stream() -> None:
            while time.monotonic() < end:
                pause = 1.0
                try:
                    async with s.get(f"{shop_url}/live?period=today") as resp:
                        if resp.status != 200:
                            pause = tally(resp, _json(await resp.read()))
                        else:  # held up to 3 s, then closed and opened again
                            tally(resp, None)
                            out.streams_opened += 1
                            pause = 0.0
                            left = max(0.0, end - time.monotonic())
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(resp.content.read(), min(left, 3.0))
                except (aiohttp.ClientError, TimeoutError):
                    out.unanswered += pause > 0  # no answer at all
                    out.streams_broken += pause == 0
                await asyncio.sleep(min(pause, max(0.0, end - time.monotonic())))

        await asyncio.gather(*(loop(i) for i in range(loops)), *(stream() for _ in range(streams)))
    return out


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _flood_process(
    shop_url: str, token: str, seconds: float, loops: int, streams: int, out: Any
) -> None:
    out.put(asyncio.run(_flood(shop_url, token, seconds, loops, streams)))


async def flood_in_a_process(
    shop_url: str, token: str, seconds: float, loops: int = 200, streams: int = 30
) -> FloodResult:
    """The flood from a process of its own, so the test's own client (the other tenant's
    dashboard, the producer) never waits behind it in one event loop."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_flood_process, args=(shop_url, token, seconds, loops, streams, out))
    proc.start()
    try:
        result: FloodResult = await asyncio.to_thread(out.get, True, seconds + 60)
    finally:
        await asyncio.to_thread(proc.join, 30)
        if proc.is_alive():
            proc.kill()
    return result


@dataclass
class Producing:
    """Views produced by :func:`produce_at_full_rate`, per shop."""

    per_shop: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return sum(self.per_shop.values())


async def produce_at_full_rate(
    bootstrap: str,
    topics: Topics,
    shops: list[str],
    at: datetime,
    progress: Callable[[], Awaitable[int]],
    done: asyncio.Event,
    producing: Producing,
    lead: int = 20_000,
    chunk: int = 6_000,
) -> None:
    """Views of ``shops`` in batches of ``chunk``, sent as soon as fewer than ``lead`` sent
    events are not yet counted (``progress()``: the worker's checkpoints), until ``done``: the
    worker always has a backlog to take, so it counts at its full rate, and the backlog left
    when ``done`` is set is at most ``lead + chunk``.

    Record batches built here and sent whole (aiokafka's send_batch, to the partition the
    default partitioner gives the shop), the next one before the last one's acknowledgements
    are awaited: one ``send()`` per event, a batch at a time, made ~3,000 events/s here (5,000
    overlapped), and the worker counted each as soon as it came (a backlog of 0 to 6,000)."""
    producer = make_producer(bootstrap)
    await producer.start()
    topic = topics.of("view")
    partitions = sorted(await producer.partitions_for(topic))
    base = await progress()
    pending: list[asyncio.Future[Any]] = []
    try:
        while not done.is_set():
            if producing.sent - (await progress() - base) >= lead:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.02)
                continue
            futures = []
            for shop in shops:
                key = shop.encode()
                partition = DefaultPartitioner()(key, partitions, partitions)
                batch = producer.create_batch()
                for _ in range(chunk // len(shops)):
                    n = producing.per_shop[shop]
                    value = view(shop, f"{shop}-full-{n}", at, "g1", ("a", "b")[n % 2])[2]
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None)
                    producing.per_shop[shop] += 1
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*pending)
            pending = futures
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass
class Watched:
    """The worker's /metrics and checkpoints, sampled while the flood lasts: (seconds since
    start, counted records, produced records, live-stream gauge, Redis errors, Redis up)."""

    samples: list[tuple[float, int, int, float, float, float]] = field(default_factory=list)

    def longest_stall(self) -> float:
        """The longest time the checkpoints stood still while events were waiting."""
        longest, since = 0.0, None
        for (t, counted, sent, *_), (t2, counted2, _s, *_r) in zip(
            self.samples, self.samples[1:], strict=False
        ):
            if counted2 == counted and sent > counted:
                since = t if since is None else since
                longest = max(longest, t2 - since)
            else:
                since = None
        return longest


async def watch(
    session: aiohttp.ClientSession,
    worker_url: str,
    progress: Callable[[], Awaitable[int]],
    sent: Callable[[], int],
    done: asyncio.Event,
    watched: Watched,
    interval_s: float = 0.25,
) -> None:
    """Sample the worker every ``interval_s`` until ``done``."""
    started = time.monotonic()
    base = await progress()
    while not done.is_set():
        async with session.get(f"{worker_url}/metrics") as resp:
            metrics = _metrics(await resp.text())
        counted = await progress() - base
        watched.samples.append(
            (
                time.monotonic() - started,
                counted,
                sent(),
                metrics.get("upsell_live_streams", 0.0),
                metrics.get("upsell_redis_errors_total", 0.0),
                metrics.get("upsell_redis_up", 0.0),
            )
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), interval_s)


def _metrics(text: str) -> dict[str, float]:
    """Every sample's value summed over its labels, by sample name."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


async def dashboard(
    session: aiohttp.ClientSession, shop_url: str, token: str, done: asyncio.Event
) -> list[tuple[int, float]]:
    """The other tenant's dashboard, one request after another until ``done``: (status,
    seconds) of each."""
    headers = {"Authorization": f"Bearer {token}"}
    out: list[tuple[int, float]] = []
    i = 0
    while not done.is_set():
        started = time.perf_counter()
        async with session.get(
            shop_url + DASHBOARD_PATHS[i % len(DASHBOARD_PATHS)], headers=headers
        ) as resp:
            await resp.read()
        out.append((resp.status, time.perf_counter() - started))
        i += 1
        await asyncio.sleep(0.05)
    return out
