"""The same end-to-end checks against a local 3-master Redis Cluster: proves the key design
(every key of a shop in its ``{shop_id}`` slot; one apply call per primary, per slot when a
primary refuses it; the API's multi-key reads within a slot)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import redis
from redis.asyncio import RedisCluster
from redis.crc import key_slot

from stream.collector.dedupe import Deduper
from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.redis_cluster import LocalRedisCluster
from stream.devtools.workers import http_get
from stream.settings import Topics
from stream.state import keys
from stream.state.batch import PartitionBatch
from stream.state.cluster_apply import apply_cluster
from stream.state.redis import RedisStore
from tests.support import state_snapshot
from tests.support.e2e import (
    eventually,
    produce,
    worker_env,
    workers,
)
from tests.support.event_factory import FIRST_DAY, SHOPS, mixed_events, settings_messages
from tests.support.expected_state import ExpectedState
from tests.support.rewind_runs import older_primaries_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


# Events per run by engine: Faust counts ~10x slower per event (shared/FACTS.md), and the faults
# land while events flow with either volume. The rewind test keeps its production just ahead of
# what the worker wrote (the rest goes at once after the rewind): mid-stream at any speed.
KILL_VOLUME = {"batch": 40_000, "faust": 15_000}
REWIND_VOLUME = {"batch": 50_000, "faust": 15_000}


@pytest.mark.parametrize("engine", ["batch", "faust"])
async def test_exact_totals_and_api_on_a_cluster_with_a_kill_9(
    engine: str,
    broker: EmbeddedBroker,
    cluster: LocalRedisCluster,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    topics = created_topics
    client = RedisCluster.from_url(cluster.url)
    await client.flushall()
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(KILL_VOLUME[engine], seed=66)
    expected = ExpectedState(SHOPS).add_all(sent)
    (w,) = workers(
        worker_env(
            broker.bootstrap,
            cluster.url,
            topics,
            engine,
            UPSELL_REDIS_CLUSTER="on",
            UPSELL_BATCH_MAX_EVENTS="2000",
        ),
        tmp_path,
        1,
    )
    try:
        w.start().wait_ready()
        producing = asyncio.create_task(
            produce(broker.bootstrap, topics, [(s.kind, s.key, s.value) for s in sent])
        )
        await asyncio.sleep(random.Random(3).uniform(0.5, 1.5))
        w.kill()
        w.start().wait_ready()
        await producing
        want = expected.counters()
        got = await eventually(lambda: state_snapshot.counters(client), lambda c: c == want, 150)
        assert got == want
        # the API over the cluster: totals, unique upgraders (PFCOUNT across day keys), ledger;
        # over every New York day of the traffic (its first UTC midnight is the evening before)
        every_day = {
            "period": "custom",
            "from": (FIRST_DAY - timedelta(days=1)).isoformat(),
            "to": datetime.now(ZoneInfo(SHOPS["shop-ny"])).date().isoformat(),
        }
        status, body = http_get(f"{w.url}/v1/shops/shop-ny/overview?{urlencode(every_day)}")
        assert status == 200, body
        metrics = json.loads(body)["metrics"]
        views = sum(v.get("v", 0) for k, v in want.items() if k.startswith("us:{shop-ny}:day:"))
        assert metrics["banner_views"] == views
        assert metrics["unique_upgraders"] > 0
        status, body = http_get(
            f"{w.url}/v1/shops/shop-ny/conversions?{urlencode({**every_day, 'limit': '500'})}"
        )
        items = json.loads(body)["items"]
        assert len(items) == expected.ledger_sizes()["us:{shop-ny}:ledger"]
        status, body = http_get(f"{w.url}/v1/shops")
        assert {s["shop_id"] for s in json.loads(body)["shops"]} == set(SHOPS)
    finally:
        w.stop()
        await client.aclose()


async def test_the_retention_sweep_scans_every_master(cluster: LocalRedisCluster) -> None:
    client = RedisCluster.from_url(cluster.url)
    try:
        await client.flushall()
        shops = [f"shop-{i}" for i in range(60)]  # spread over the three masters' slots
        # three days long past the retention; the sweep deletes through the middle one
        today = datetime.now(UTC).date()
        first, last, kept = (str(today - timedelta(days=n)) for n in (1000, 999, 998))
        for shop in shops:
            for day in (first, last, kept):
                await client.hset(keys.day(shop, day), "v", 1)
                await client.pfadd(keys.upgraders(shop, day), "sub")
            await client.hset(keys.progress(shop), "le", 1)
        store = RedisStore(client, cluster=True)
        assert await store.claim_sweep(last, 60)
        assert not await store.claim_sweep(last, 60)
        assert await store.delete_days_through(last, chunk=7) == len(shops) * 2 * 2
        left = {k.decode() async for k in client.scan_iter(match=keys.SHOP_KEYS)}
        assert {keys.day_of(k) for k in left} == {kept, None}
        assert len(left) == len(shops) * 3  # the kept day's hash and HLL, and progress
    finally:
        await client.aclose()


def _views_batch(shops: list[str], generation: int, day: str) -> PartitionBatch:
    batch = PartitionBatch("views", 0, generation, len(shops) - 1, retention_days=30)
    for offset, shop in enumerate(shops):
        section = batch.section(shop, offset)
        section.cells[(keys.VIEWS, day, "g", "v")] += offset + 1
        section.saw(offset, 1_000 + offset)
    return batch


async def _views_counted(client: RedisCluster, shops: list[str], day: str) -> dict[str, int]:
    name = keys.field(keys.VIEWS, "v")
    return {s: int(await client.hget(keys.variations(s, day, "g"), name) or 0) for s in shops}


def _script_calls(port: int) -> int:
    """Apply-script calls a primary ran (a first call that found no script is not counted)."""
    stats = redis.Redis(port=port).info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


async def test_one_call_per_primary_and_per_slot_when_a_primary_refuses(
    cluster: LocalRedisCluster,
) -> None:
    client = RedisCluster.from_url(cluster.url)
    try:
        await client.flushall()
        await client.initialize()
        shops = [f"shop-{i}" for i in range(60)]  # on all three primaries
        day = str(datetime.now(UTC).date())
        store = RedisStore(client, cluster=True)
        claim = await store.claim("views", 0)
        batch = _views_batch(shops, claim.generation, day)
        # one primary asked for every shop: it refuses at the first shop it does not serve,
        # in the script's check phase, so nothing is written
        node = client.nodes_manager.get_node_from_slot(key_slot(keys.progress(shops[0]).encode()))
        payload = batch.payload(shops, checkpoint=False)
        assert await store._call_on(node, payload, keys.progress(shops[0])) is None
        assert [k async for k in client.scan_iter(match=keys.SHOP_KEYS)] == []

        async def refused(*_args: object) -> None:
            return None

        # every primary refusing: the shops are applied per slot, once each
        assert (await apply_cluster(client, batch, store._call, refused)).status == "ok"
        assert await _views_counted(client, shops, day) == {s: i + 1 for i, s in enumerate(shops)}

        await client.flushall()
        claim = await store.claim("views", 0)
        for port in cluster.ports:
            redis.Redis(port=port).config_resetstat()
        assert (await store.apply(_views_batch(shops, claim.generation, day))).status == "ok"
        calls = [_script_calls(port) for port in cluster.ports]
        assert calls.count(0) == 0 and sum(calls) == 4, f"a call per primary, a checkpoint: {calls}"
        assert await _views_counted(client, shops, day) == {s: i + 1 for i, s in enumerate(shops)}
        again = await store.apply(_views_batch(shops, claim.generation, day))
        assert again.status == "conflict" and again.conflicts, again
        assert again.conflicts.items() <= {s: i for i, s in enumerate(shops)}.items()
    finally:
        await client.aclose()


# make slow-ci and make chaos, both engines (batch 38-109 s, Faust 35-69 s; moved out of make
# test for its wall time, issue 31), beside the long version's every-primary-in-turn runs
@pytest.mark.parametrize(
    "engine",
    [
        pytest.param("batch", marks=[pytest.mark.slow, pytest.mark.ci]),
        pytest.param("faust", marks=[pytest.mark.slow, pytest.mark.ci]),
    ],
)
async def test_a_primary_brought_back_older_mid_stream(
    engine: str,
    broker: EmbeddedBroker,
    cluster: LocalRedisCluster,
    created_topics: Topics,
    tmp_path: Path,
) -> None:
    """One primary loses its last writes (restored from its own older snapshot) while the other
    primaries, which may hold the partition checkpoints, keep theirs. Counts come back exact
    through the API, without a restart (tests/support/rewind_runs.py; the long version,
    every primary in turn, is in tests/chaos/test_rewind_chaos.py)."""
    await older_primaries_run(
        engine,
        broker.bootstrap,
        cluster,
        created_topics,
        tmp_path,
        events=REWIND_VOLUME[engine],
        primaries=[cluster.node_of(keys.progress("shop-0"))],
    )


async def test_the_collectors_claims_are_released_on_a_cluster(cluster: LocalRedisCluster) -> None:
    """A claim the broker did not take is released so the storefront's retry is produced: on a
    Cluster too, the claims' slots spread over every primary (a pipeline, not a transaction)."""
    client = RedisCluster.from_url(cluster.url)
    try:
        dedupe = Deduper(client, window_s=60)
        idents = [(f"shop-{i}", f"evt-{i}") for i in range(20)]  # slots on every primary
        assert await dedupe.claim(idents) == [True] * 20
        assert await dedupe.claim(idents) == [False] * 20
        await dedupe.release(idents)
        assert await dedupe.claim(idents) == [True] * 20, "released claims are free again"
    finally:
        await client.aclose()
