"""The service on secured Kafka (tests/conftest.py's ``kafka_cluster``: three Apache Kafka
brokers with an SSL listener and a SASL_SSL one whose SCRAM-SHA-512 users Kafka's StorageTool
made, a test CA): every client the worker runs (the admin that checks the topics, the start-up
settings read, Faust's agents, the counting consumer, the lag watch, the dead-letter producer)
connects through the UPSELL_KAFKA_* settings and counts exactly; wrong credentials or an unknown
CA end the start with one line and exit 2.

In ``make chaos`` beside test_kafka_cluster.py: three JVMs take 40-120 s to start here."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from stream.devtools.apache_kafka import KafkaCluster
from stream.devtools.workers import ROOT, WorkerProcess, http_post
from stream.kafka.clients import produce_records
from stream.kafka.reading import read_to_end
from stream.kafka.topics import ensure_topics
from stream.settings import KafkaConnection, Settings, Topics
from tests.support.brokers import KAFKA_USERS
from tests.support.collector_keys import make_key
from tests.support.e2e import worker_env, workers
from tests.support.event_factory import SHOPS, mixed_events, settings_messages
from tests.support.exactly_once import as_items, settle, wait_for_state
from tests.support.expected_state import ExpectedState

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

USER, PASSWORD = next(iter(KAFKA_USERS.items()))


def secured(
    k: KafkaCluster, protocol: str, tmp_path: Path, password: str = PASSWORD
) -> dict[str, str]:
    """The UPSELL_KAFKA_* variables of a client on ``protocol`` (SSL or SASL_SSL)."""
    assert k.ca is not None
    env = {
        "UPSELL_KAFKA_BOOTSTRAP": k.ssl_bootstrap if protocol == "SSL" else k.sasl_ssl_bootstrap,
        "UPSELL_KAFKA_SECURITY_PROTOCOL": protocol,
        "UPSELL_KAFKA_CA_FILE": str(k.ca.ca_file),
        "UPSELL_KAFKA_IDEMPOTENCE": "on",  # Apache Kafka takes the idempotent producer
        "UPSELL_REPLICATION_FACTOR": "3",
        "UPSELL_MIN_INSYNC_REPLICAS": "2",
    }
    if protocol == "SASL_SSL":
        secret = tmp_path / "kafka-password"
        secret.write_text(password + "\n")
        env |= {
            "UPSELL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "UPSELL_KAFKA_SASL_USERNAME": USER,
            "UPSELL_KAFKA_SASL_PASSWORD_FILE": str(secret),
        }
    return env


def connection(env: dict[str, str]) -> KafkaConnection:
    return Settings.from_env({**env, "UPSELL_AUTH": "off"}).kafka


POISON = [("view", b"s1", b"{not json"), ("click", b"s2", b"[1, 2]")]


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
async def test_counts_exactly_through_every_client_over(
    kafka_cluster: KafkaCluster, redis_url: str, topics: Topics, tmp_path: Path, protocol: str
) -> None:
    k = kafka_cluster
    extra = secured(k, protocol, tmp_path)
    conn = connection(extra)
    assert conn.security.protocol == protocol and conn.bootstrap != k.bootstrap
    # the admin, over the secured listener
    await ensure_topics(conn, topics, partitions=4, replication=3, min_insync=2)
    sent = mixed_events(4_000, seed=33)
    expected = ExpectedState(SHOPS).add_all(sent)

    def records(
        items: Sequence[tuple[str, bytes | None, bytes | None]],
    ) -> list[tuple[str, bytes | None, bytes | None]]:
        return [(topics.of(kind), key, value) for kind, key, value in items]

    # an idempotent acks=all producer built from the same settings
    await produce_records(conn, records(settings_messages()))
    env = worker_env(conn.bootstrap, redis_url, topics, "batch", **extra)
    (w,) = workers(env, tmp_path, 1)
    redis = Redis.from_url(redis_url)
    try:
        w.start().wait_ready(180)
        await produce_records(conn, records([*as_items(sent), *POISON]))
        await wait_for_state(redis, expected, 240)
        await settle(redis, expected)
        letters = [r async for batch in read_to_end(conn, topics.dead_letters) for r in batch]
        # the dead-letter producer (acks=all, idempotent) wrote over the secured listener
        # (mixed_events holds bad events of its own: their letters come too)
        reasons = {dict(r.headers)["reason"].decode() for r in letters}
        assert {"bad_type:event", "invalid_json"} <= reasons, reasons
        assert w.alive() and w.starts == 1, w.tail()
        assert "refused" not in w.tail()
        await _collector_produces(conn, extra, redis_url, topics, tmp_path)
    finally:
        w.stop()
        await redis.aclose()


async def _collector_produces(
    conn: KafkaConnection, extra: dict[str, str], redis_url: str, topics: Topics, tmp_path: Path
) -> None:
    """The collector's producer (acks=all, idempotent) on the same secured listener: a 202
    means the brokers hold the events."""
    env = {"UPSELL_REDIS_URL": redis_url, "UPSELL_TOPIC_PREFIX": topics.prefix, **extra}
    collector = WorkerProcess(env, tmp_path, name="collector", role="collector")
    key = await asyncio.to_thread(make_key, redis_url, "shop-col", "secret")
    ids = [f"col-{i}" for i in range(5)]
    events = [
        {"kind": "banner_view", "event_id": i, "shop_id": "shop-col", "group_id": "g1",
         "variation_id": "a", "occurred_at": datetime.now(UTC).isoformat()}
        for i in ids
    ]  # fmt: skip
    try:
        await asyncio.to_thread(collector.start().wait_ready, 120)
        status, _, body = await asyncio.to_thread(
            http_post, collector.url + "/v1/collect", orjson.dumps({"events": events}), key=key
        )
        assert status == 202, body
    finally:
        collector.stop()
    views = [r async for batch in read_to_end(conn, topics.views) for r in batch]
    got = {orjson.loads(r.value)["event_id"] for r in views if r.key == b"shop-col"}
    assert got == set(ids), got


def start_worker(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, **env, "UPSELL_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_wrong_password_unknown_ca_one_line_exit_2(
    kafka_cluster: KafkaCluster, redis_url: str, topics: Topics, tmp_path: Path
) -> None:
    k = kafka_cluster
    base = {
        "UPSELL_REDIS_URL": redis_url,
        "UPSELL_AUTH": "off",
        "UPSELL_TOPIC_PREFIX": topics.prefix,
    }
    wrong = start_worker({**base, **secured(k, "SASL_SSL", tmp_path, PASSWORD + "-x")}, tmp_path)
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=not-the-brokers-ca", "-keyout", str(tmp_path / "other.key"), "-out", str(other_ca)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    unknown = start_worker(
        {**base, **secured(k, "SSL", tmp_path), "UPSELL_KAFKA_CA_FILE": str(other_ca)}, tmp_path
    )
    for run, says in (
        (wrong, f"refused SASL SCRAM-SHA-512 for user '{USER}'"),
        (unknown, "TLS handshake failed: certificate verify failed"),
    ):
        lines = [line for line in run.stderr.splitlines() if line.startswith("upsell-stream:")]
        print(lines)
        assert run.returncode == 2, run.stderr[-2000:]
        assert len(lines) == 1 and says in lines[0], run.stderr[-2000:]
        assert "Traceback" not in run.stderr
