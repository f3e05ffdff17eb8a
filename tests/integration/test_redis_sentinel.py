"""Redis behind Sentinel (UPSELL_REDIS_SENTINELS, UPSELL_REDIS_SENTINEL_MASTER): real
``redis-server --sentinel`` processes, a primary and a replica, and a failover mid-stream to a
replica that lagged: the replica is killed while the worker writes on, the primary is killed,
the replica comes back from its own (older) AOF and the Sentinels promote it. The worker follows
the new primary through redis-py's Sentinel pool, finds Redis behind what it wrote (a rewind),
reads those records again, and the totals are exact."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.sentinel import Sentinel

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.ports import free_port
from stream.devtools.workers import http_get
from stream.settings import Topics
from tests.support.e2e import eventually, produce, produce_until, worker_env, workers, written
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items, settle, wait_for_state
from tests.support.expected_state import ExpectedState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MASTER = "upsell"


class Sentinels:
    """Three ``redis-server --sentinel`` processes watching ``port`` with quorum 2."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.ports = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes]] = []
        for p in self.ports:
            conf = workdir / f"sentinel-{p}.conf"
            conf.write_text(
                f"port {p}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
            )
            with open(workdir / f"sentinel-{p}.log", "wb") as log:  # the child keeps its copy
                self.procs.append(
                    subprocess.Popen(
                        ["redis-server", str(conf), "--sentinel"], stdout=log, stderr=log
                    )
                )

    @property
    def setting(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def master_port(self) -> int | None:
        for p in self.ports:
            try:
                addr = redis.Redis(port=p, socket_timeout=1).sentinel_get_master_addr_by_name(
                    MASTER
                )
            except redis.RedisError:
                continue
            if isinstance(addr, tuple):
                return int(addr[1])
        return None

    def replicas_known(self) -> int:
        try:
            return len(redis.Redis(port=self.ports[0], socket_timeout=1).sentinel_slaves(MASTER))
        except redis.RedisError:
            return 0

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def sentinel_pair(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis, Sentinels]]:
    primary = EmbeddedRedis(tmp_path).start()
    replica = EmbeddedRedis(
        tmp_path, extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
    ).start()
    sentinels = Sentinels(tmp_path, primary.port)
    try:
        _until(lambda: _link_up(replica.port), 30, "replica in sync")
        _until(lambda: sentinels.replicas_known() == 1, 30, "sentinels see the replica")
        yield primary, replica, sentinels
    finally:
        sentinels.stop()
        replica.stop()
        primary.stop()


def _link_up(port: int) -> bool:
    info = redis.Redis(port=port, socket_timeout=1).info("replication")
    return bool(info.get("master_link_status") == "up")


def _until(done: object, timeout_s: float, what: str) -> None:
    assert callable(done)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if done():
                return
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, f"not {what} after {timeout_s}s"
        time.sleep(0.2)


def rewinds(url: str) -> float:
    _, body = http_get(f"{url}/metrics")
    found = re.findall(rb"^upsell_redis_rewinds_total\{[^}]*\} ([0-9.e+]+)$", body, re.M)
    return sum(float(v) for v in found)


async def test_failover_to_a_lagging_replica_mid_stream_keeps_totals_exact(
    broker: EmbeddedBroker,
    created_topics: Topics,
    sentinel_pair: tuple[EmbeddedRedis, EmbeddedRedis, Sentinels],
    tmp_path: Path,
) -> None:
    primary, replica, sentinels = sentinel_pair
    topics = created_topics
    await produce(broker.bootstrap, topics, settings_messages())
    sent = mixed_events(12_000, seed=44)
    expected = ExpectedState(SHOPS).add_all(sent)
    env = worker_env(
        broker.bootstrap,
        "redis://127.0.0.1:1/0",  # the host is the Sentinels' answer; the URL gives the db
        topics,
        "batch",
        UPSELL_REDIS_SENTINELS=sentinels.setting,
        UPSELL_REDIS_SENTINEL_MASTER=MASTER,
        UPSELL_BATCH_MAX_EVENTS="500",
    )
    (w,) = workers(env, tmp_path, 1)
    sentinel = Sentinel([("127.0.0.1", p) for p in sentinels.ports])
    client = sentinel.master_for(MASTER)
    try:
        w.start().wait_ready(120)
        done = asyncio.Event()
        producing = asyncio.create_task(
            produce_until(
                broker.bootstrap, topics, as_items(sent), done, 1_500.0, lambda: written(client)
            )
        )
        await eventually(lambda: written(client), lambda n: n > 2_000, 60)
        replica.kill()  # the replica stops copying; the worker writes on to the primary
        before = await written(client)
        await eventually(lambda: written(client), lambda n: n > before + 500, 30)
        assert not producing.done(), "events must flow through the failover"
        primary.kill()
        replica.start()  # back from its own AOF: behind what the worker wrote
        await asyncio.to_thread(
            _until, lambda: sentinels.master_port() == replica.port, 60, "replica promoted"
        )
        done.set()
        await producing
        await wait_for_state(client, expected, 180)
        await settle(client, expected)
        assert w.alive() and w.starts == 1, w.tail()
        assert rewinds(w.url) >= 1, "the promoted replica lagged: the worker must have seen it"
        w.stop()  # closes the master client and the Sentinels' clients (close_redis)
        assert w.proc is not None and w.proc.returncode == 0, w.tail()
        assert "Traceback" not in w.tail(200), w.tail(200)
    finally:
        w.stop()
        await client.aclose()
        await client.connection_pool.disconnect()
        for each in sentinel.sentinels:
            await each.aclose()
