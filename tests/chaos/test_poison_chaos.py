"""Long versions of the poison-record, codec and unreadable-batch tests (``make chaos``): a long
stream with a ladder of record sizes up to the producer's limit and odd bytes on every partition
it lands on; every codec through both client libraries at volume. Each prints its figures."""

from __future__ import annotations

import hashlib
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from tests.support.codec_producers import CLIENTS, CODECS, produce_compressed
from tests.support.dead_letters import DEAD_LETTER_MAX_BYTES
from tests.support.e2e import day_metrics, eventually, produce, read_topic, worker_env, workers
from tests.support.odd_records import LARGEST, interleaved, odd_values, view

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# every power of two up to the limit, each +-1, and the limit itself
LADDER = tuple(
    sorted(
        {0, LARGEST} | {2**k + d for k in range(21) for d in (-1, 0, 1) if 0 <= 2**k + d <= LARGEST}
    )
)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_long_stream_with_every_size_and_odd_bytes(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    rng = random.Random(11)
    shops = [f"poison-{i}" for i in range(4)]
    plan: dict[str, tuple[list[tuple[bytes, bytes | None]], int, list[bytes | None]]] = {}
    for i, shop in enumerate(shops):
        odd = odd_values(rng, tuple(s for s in LADDER if s % 4 == i % 4 or s == LARGEST))
        items, valid = interleaved(shop, at, odd, valid_between=400, seed=i)
        plan[shop] = (items, valid, odd)
    stream = [("view", k, v) for items, _, _ in plan.values() for k, v in items]
    odd_total = sum(len(odd) for _, _, odd in plan.values())
    (w,) = workers(
        worker_env(
            broker.bootstrap, redis_url, created_topics, engine, UPSELL_BATCH_MAX_EVENTS="2000"
        ),
        tmp_path,
        1,
    )
    try:
        w.start().wait_ready()
        started = time.monotonic()
        await produce(broker.bootstrap, created_topics, stream)
        want = {shop: valid for shop, (_, valid, _) in plan.items()}

        async def counted() -> dict[str, int]:
            return {
                s: (await day_metrics(w.url, s, at.date(), at.date())).get("banner_views", -1)
                for s in shops
            }

        got = await eventually(counted, lambda c: c == want, 600, interval_s=1.0)
        seconds = time.monotonic() - started
        letters = await eventually(
            lambda: read_topic(broker.bootstrap, created_topics.dead_letters, 60),
            lambda rs: len(rs) >= odd_total,
            120,
        )
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
    assert got == want, (got, want)
    sizes = [len(r.value) for r in letters]
    hashes = {orjson.loads(r.value)["original_sha256"] for r in letters}
    sent = {
        hashlib.sha256(v).hexdigest() if v is not None else None
        for *_, odd in plan.values()
        for v in odd
    }
    print(
        f"\n[{engine}] {len(stream):,} records ({sum(want.values()):,} views, {odd_total} odd of "
        f"0 B to {max(len(v) for _, _, v in stream if v is not None):,} B) counted in "
        f"{seconds:.1f} s; {len(letters)} dead letters, largest {max(sizes):,} B"
    )
    assert len(letters) == odd_total and hashes == sent
    assert max(sizes) <= DEAD_LETTER_MAX_BYTES


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_every_codec_at_volume_through_both_clients(
    engine: str, broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    per = 20_000
    want = {f"{client}-{codec}": per for client in CLIENTS for codec in CODECS}
    (w,) = workers(worker_env(broker.bootstrap, redis_url, created_topics, engine), tmp_path, 1)
    try:
        w.start().wait_ready()
        started = time.monotonic()
        for client in CLIENTS:
            for codec in CODECS:
                shop = f"{client}-{codec}"
                records = [
                    (created_topics.views, shop.encode(), view(shop, i, at)) for i in range(per)
                ]
                await produce_compressed(client, broker.bootstrap, codec, records)

        async def counted() -> dict[str, int]:
            return {
                s: (await day_metrics(w.url, s, at.date(), at.date())).get("banner_views", -1)
                for s in want
            }

        got = await eventually(counted, lambda c: c == want, 600, interval_s=1.0)
        seconds = time.monotonic() - started
        assert w.alive() and w.starts == 1, w.tail()
    finally:
        w.stop()
    assert got == want, got
    total = sum(want.values())
    print(
        f"\n[{engine}] {total:,} views in {len(CODECS)} codecs x {len(CLIENTS)} clients "
        f"produced and counted in {seconds:.1f} s ({total / seconds:,.0f}/s)"
    )
