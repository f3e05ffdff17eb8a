"""Many distinct shop ids through the embedded broker into one worker: its memory (RSS, sampled
from /proc) and its per-shop caches (upsell_cache_entries) while it counts, and the counts of
every shop afterwards. Shared by the short test (tests/integration/test_memory_bounds.py) and
the long one in ``make chaos``."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis

from stream.dates.days import local_date
from stream.devtools.workers import WorkerProcess
from stream.settings import Topics
from stream.state import keys
from tests.support.e2e import day_metrics, eventually, produce, worker_env, workers
from tests.support.metrics import scrape
from tests.support.odd_records import view

# UTC+14 and UTC-12 are 26 hours apart, so at any instant at least one of them is on another
# date than UTC: a shop's settings evicted and assumed (UTC) would count on the wrong day.
ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


@dataclass
class Figures:
    views: int
    shops: int
    seconds: float = 0.0
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0  # sampled every 0.5 s while counting
    hwm_mb: float = 0.0  # the kernel's high-water mark of the worker's RSS (VmHWM)
    caches: dict[str, float] = field(default_factory=dict)  # largest size seen per cache

    def line(self) -> str:
        caches = ", ".join(f"{k} {int(v):,}" for k, v in sorted(self.caches.items()))
        return (
            f"{self.views:,} views over {self.shops:,} shop ids counted in {self.seconds:.1f} s "
            f"({self.views / max(self.seconds, 1e-9):,.0f}/s); worker RSS {self.rss_start_mb:.0f} "
            f"MB ready, peak {self.rss_peak_mb:.0f} MB sampled, VmHWM {self.hwm_mb:.0f} MB; "
            f"largest caches: {caches or 'not reported'}"
        )


def plan(shops: int, views: int, seed: int = 5) -> tuple[list[str], dict[str, str]]:
    """Shop ids (random-looking, as producers send them) and the zone of one in 10 of them."""
    rng = random.Random(seed)
    ids = [f"shop-{rng.getrandbits(48):012x}-{i}" for i in range(shops)]
    zones = {shop: ZONES[i // 10 % 2] for i, shop in enumerate(ids) if i % 10 == 0}
    assert views >= shops
    return ids, zones


def stream(ids: list[str], views: int, at: datetime) -> Iterator[tuple[str, bytes, bytes]]:
    """``views`` views cycling through every shop in turn, so each comes back only after all
    others: every cache that holds fewer shops than that has evicted it meanwhile."""
    for n in range(views):
        shop = ids[n % len(ids)]
        yield "view", shop.encode(), view(shop, n, at)


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field_name} for pid {pid}")


async def applied_views(client: aioredis.Redis, topic: str, partitions: int = 4) -> int:
    """Records of ``topic`` the partition checkpoints cover (no SCAN: the keyspace is large)."""
    offsets = [await client.hget(keys.partition(topic, p), "offset") for p in range(partitions)]
    return sum(int(o) + 1 for o in offsets if o is not None)


async def counted(redis_url: str, ids: list[str], zones: dict[str, str], at: datetime) -> int:
    """Views Redis holds for ``ids`` on each shop's local day of ``at``."""
    client = aioredis.Redis.from_url(redis_url)
    total = 0
    try:
        for first in range(0, len(ids), 5_000):
            async with client.pipeline(transaction=False) as pipe:
                for shop in ids[first : first + 5_000]:
                    day = local_date(zones.get(shop, "UTC"), at).isoformat()
                    pipe.hget(keys.day(shop, day), "v")
                total += sum(int(v or 0) for v in await pipe.execute())
    finally:
        await client.aclose()
    return total


async def measured(
    broker: str,
    redis_url: str,
    topics: Topics,
    log_dir: Path,
    *,
    shops: int,
    views: int,
    timeout_s: float,
    sample: int,
    **env: str,
) -> Figures:
    """Produce the stream (an hour ago) and wait until Redis holds every view, sampling the
    worker meanwhile; then read ``sample`` shops over HTTP. Prints the figures."""
    at = datetime.now(UTC) - timedelta(hours=1)
    ids, zones = plan(shops, views)
    figures = Figures(views, shops)
    # settings published before the worker starts: it knows them before it counts (contract §3)
    await produce(broker, topics, [("shop", s.encode(), _settings(s, z)) for s, z in zones.items()])
    (w,) = workers(worker_env(broker, redis_url, topics, "batch", **env), log_dir, 1)
    try:
        w.start().wait_ready(timeout=600)  # it reads every setting first
        await _settings_stored(redis_url, len(zones))
        await _count(w, redis_url, topics, ids, zones, at, figures, timeout_s)
        print("\n" + figures.line())
        await sample_over_http(w, ids, zones, at, views, sample)
        assert w.alive() and w.starts == 1, w.tail()
    except BaseException:
        print(f"\nfailed after: {figures.line()}")
        raise
    finally:
        w.stop()
    return figures


async def _count(
    w: WorkerProcess,
    redis_url: str,
    topics: Topics,
    ids: list[str],
    zones: dict[str, str],
    at: datetime,
    figures: Figures,
    timeout_s: float,
) -> None:
    assert w.proc is not None
    pid = w.proc.pid
    views = figures.views
    figures.rss_start_mb = rss_mb(pid)
    client = aioredis.Redis.from_url(redis_url)
    started = time.monotonic()
    producing = asyncio.ensure_future(
        produce(w.env["UPSELL_KAFKA_BOOTSTRAP"], topics, stream(ids, views, at))
    )
    applied = 0
    try:
        while applied < views and time.monotonic() - started < timeout_s:
            await asyncio.sleep(0.5)
            assert w.alive(), w.tail()
            figures.rss_peak_mb = max(figures.rss_peak_mb, rss_mb(pid))
            _sample_caches(w, figures)
            applied = await applied_views(client, topics.views)
        await producing
    finally:
        await client.aclose()
    figures.seconds = time.monotonic() - started
    figures.hwm_mb = rss_mb(pid, "VmHWM")
    assert applied == views, f"the worker applied {applied:,} of {views:,} views in {timeout_s} s"
    total = await counted(redis_url, ids, zones, at)
    assert total == views, f"Redis holds {total:,} views on the shops' local days, sent {views:,}"


async def _settings_stored(redis_url: str, want: int) -> None:
    """Every setting in Redis before the views go: the embedded broker's end offsets can lag
    the records it holds (Tansu only: stream/kafka/reading.py), so reading the topic "to its
    end" at start may stop short of its last records (the shops consumer then stores them
    within seconds)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        stored = await eventually(lambda: client.hlen(keys.SHOPS), lambda n: n >= want, 300)
    finally:
        await client.aclose()
    assert stored == want, f"{stored:,} of {want:,} shop settings in Redis"


def _sample_caches(w: WorkerProcess, figures: Figures) -> None:
    """The largest upsell_cache_entries so far; a worker too busy to answer /metrics within
    its timeout (a batch of thousands of new shops) is sampled next time."""
    try:
        samples = scrape(w)
    except OSError:
        return
    for (name, labels), value in samples.items():
        if name == "upsell_cache_entries":
            cache = dict(labels)["cache"]
            figures.caches[cache] = max(figures.caches.get(cache, 0), value)


def _settings(shop: str, zone: str) -> bytes:
    return (
        f'{{"shop_id": "{shop}", "timezone": "{zone}", "week_start": "monday", "currency": "USD"}}'
    ).encode()


async def sample_over_http(
    w: WorkerProcess, ids: list[str], zones: dict[str, str], at: datetime, views: int, n: int
) -> None:
    """``n`` shops (half with settings) read over HTTP show their views on their local day."""
    rng = random.Random(9)
    position = {shop: i for i, shop in enumerate(ids)}
    sample = rng.sample(sorted(zones), n // 2) + rng.sample(ids, n - n // 2)
    for shop in sample:
        day = local_date(zones.get(shop, "UTC"), at)
        metrics = await day_metrics(w.url, shop, day, day)
        want = views // len(ids) + (1 if position[shop] < views % len(ids) else 0)
        assert metrics.get("banner_views") == want, (shop, zones.get(shop), day, metrics)
