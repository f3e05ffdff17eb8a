"""Shared helpers of the end-to-end tests: worker and collector environments, producing, waiting
for counts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis
from redis.exceptions import RedisError

from stream.devtools.workers import WorkerProcess, http_get
from stream.devtools.workers import worker_env as devtools_worker_env
from stream.http.api.tokens_cli import add_token
from stream.kafka.clients import make_producer
from stream.kafka.reading import read_to_end
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from stream.state.redis import AnyRedis

T = TypeVar("T")


def worker_env(
    bootstrap: str, redis_url: str, topics: Topics, engine: str, **extra: str
) -> dict[str, str]:
    """The devtools worker environment with the tests' defaults: 4 partitions, a group of the
    topics' own, quick session timeouts, INFO logs; ``extra`` overrides any of them."""
    defaults = {
        "UPSELL_PARTITIONS": "4",
        "UPSELL_GROUP_ID": f"grp-{topics.prefix.rstrip('.')}",
        # Tansu holds a group join for half the session timeout (shared/FACTS.md): 2 s makes
        # every worker start and every takeover after a kill ~2 s shorter than 6 s did. Tansu
        # only: re-measured 2026-12-07, a first join took 1.15 s with 2 s and 3.15 s with 6 s
        # on Tansu, 0.42 s with 2 s on Apache Kafka. On Kafka the 2 s still shortens the
        # takeover after a kill -9 (the dead member is dropped after the session timeout);
        # Kafka refuses a session timeout below group.min.session.timeout.ms (6 s by default,
        # 1 s on the test brokers: stream/devtools/apache_kafka.py).
        "UPSELL_SESSION_TIMEOUT_S": "2",
        "UPSELL_HEARTBEAT_S": "0.5",
        "UPSELL_BATCH_MAX_EVENTS": "5000",
        "UPSELL_LOG_LEVEL": "INFO",
    }
    return devtools_worker_env(bootstrap, redis_url, topics, engine, **(defaults | extra))


def workers(env: dict[str, str], log_dir: Path, n: int) -> list[WorkerProcess]:
    return [WorkerProcess(env, log_dir, name=f"w{i + 1}") for i in range(n)]


def collector_env(bootstrap: str, redis_url: str, topics: Topics, **extra: str) -> dict[str, str]:
    """A collector's environment with quick key-cache refreshes and limits high enough for
    the tests' bursts; ``extra`` overrides any of them."""
    return {
        "UPSELL_KAFKA_BOOTSTRAP": bootstrap,
        "UPSELL_KAFKA_IDEMPOTENCE": "off",
        "UPSELL_REDIS_URL": redis_url,
        "UPSELL_TOPIC_PREFIX": topics.prefix,
        "UPSELL_COLLECTOR_KEY_CACHE_S": "1",
        "UPSELL_COLLECTOR_KEY_RATE": "50",
        "UPSELL_COLLECTOR_KEY_BURST": "300",
        "UPSELL_COLLECTOR_ADDRESS_RATE": "5000",
        "UPSELL_COLLECTOR_ADDRESS_BURST": "10000",
        **extra,
    }


def api_workers(
    bootstrap: str,
    redis_url: str,
    log_dir: Path,
    prefix: str,
    n: int,
    scopes: Sequence[Sequence[str]],
    **extra: str,
) -> tuple[list[WorkerProcess], Topics, list[str]]:
    """For a module that serves the API with auth on: the session Redis emptied, topics
    ``prefix`` created, one token per entry of ``scopes`` (shop ids, ``*`` for all), and ``n``
    batch-engine workers (not started). Returns the workers, the topics and the tokens."""
    redis.Redis.from_url(redis_url).flushall()
    topics = Topics(prefix)
    asyncio.run(ensure_topics(bootstrap, topics, partitions=4))
    tokens_file = log_dir / "tokens"
    tokens = [add_token(tokens_file, list(scope)) for scope in scopes]
    env = worker_env(
        bootstrap,
        redis_url,
        topics,
        "batch",
        UPSELL_AUTH="on",
        UPSELL_API_TOKENS=str(tokens_file),
        **extra,
    )
    return workers(env, log_dir, n), topics, tokens


async def produce(
    bootstrap: str,
    topics: Topics,
    items: Iterable[tuple[str, bytes | None, bytes | None]],
    partition: int | None = None,
    **producer_options: Any,
) -> int:
    """Send (kind, key, value) items; returns how many. Waits for every acknowledgement.
    ``producer_options`` override make_producer's (``enable_idempotence=True, acks="all"`` on
    Apache Kafka, where a leader may fail over mid-stream)."""
    producer = make_producer(bootstrap, **producer_options)
    await producer.start()
    sent = 0
    try:
        futures = []
        for kind, key, value in items:
            topic = topics.of(kind)
            futures.append(await producer.send(topic, key=key, value=value, partition=partition))
            sent += 1
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def produce_paced(
    bootstrap: str,
    topics: Topics,
    items: Sequence[tuple[str, bytes | None, bytes | None]],
    rate: float,
    chunk: int = 5_000,
) -> None:
    """Produce ``items`` at about ``rate`` events/s, so faults happen while events flow."""
    started = time.monotonic()
    for i in range(0, len(items), chunk):
        await produce(bootstrap, topics, items[i : i + chunk])
        await asyncio.sleep(max(0.0, started + (i + chunk) / rate - time.monotonic()))


async def produce_until(
    bootstrap: str,
    topics: Topics,
    items: Sequence[tuple[str, bytes | None, bytes | None]],
    done: asyncio.Event,
    rate: float,
    progress: Callable[[], Awaitable[int]] | None = None,
    lead: int = 2_000,
    chunk: int = 500,
    **producer_options: Any,
) -> None:
    """Produce ``items`` at about ``rate`` events/s, and at most ``lead`` events ahead of
    ``progress()`` (what the worker has written, e.g. ``written``), until ``done`` is set; then
    the rest at once. Events flow throughout the faults a test injects, at whatever speed this
    machine counts, and the test never waits out a fixed pace after its last fault."""
    started = time.monotonic()

    async def behind(i: int) -> bool:
        """More than ``lead`` sent and not yet written (or Redis away while a test restarts it)."""
        try:
            return progress is not None and i - (await progress() - base) > lead
        except (OSError, RedisError):
            return True

    base = await progress() if progress else 0
    for i in range(0, len(items), chunk):
        while not done.is_set() and await behind(i):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)
        if done.is_set():
            await produce(bootstrap, topics, items[i:], **producer_options)
            return
        await produce(bootstrap, topics, items[i : i + chunk], **producer_options)
        pause = max(0.0, started + (i + chunk) / rate - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), pause)


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every record of ``topic`` currently in the log (TimeoutError after ``timeout_s``)."""
    out: list[Any] = []

    async def read() -> None:
        async for records in read_to_end(bootstrap, topic):
            out.extend(records)

    await asyncio.wait_for(read(), timeout_s)
    return out


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float,
    interval_s: float = 0.25,
) -> T:
    """Poll ``probe`` until ``done`` holds for its result; returns the last result either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval_s)


async def day_metrics(url: str, shop: str, first: date, last: date) -> dict[str, Any]:
    """The ``metrics`` of ``shop``'s overview from ``first`` to ``last``, read over HTTP (auth
    off); an empty dict while the worker cannot answer."""
    query = f"period=custom&from={first.isoformat()}&to={last.isoformat()}"
    try:
        status, body = await asyncio.to_thread(http_get, f"{url}/v1/shops/{shop}/overview?{query}")
    except OSError:
        return {}
    if status != 200:
        return {}
    metrics: dict[str, Any] = orjson.loads(body)["metrics"]
    return metrics


async def written(redis: AnyRedis) -> int:
    """Sum of the partition checkpoints: how far the worker's writes got, in records."""
    total = 0
    async for key in redis.scan_iter(match="us:part:*"):
        total += int(await redis.hget(key, "offset") or -1) + 1
    return total


async def wait_written(redis: AnyRedis, at_least: int, what: str) -> int:
    got = await eventually(lambda: written(redis), lambda n: n >= at_least, 60)
    assert got >= at_least, f"{what}: checkpoints reached {got} records, wanted {at_least}"
    return got
