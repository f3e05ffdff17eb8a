"""Shared fixtures: real brokers (the embedded Tansu; Apache Kafka, one node and a secured
three-node cluster) and a real redis-server, all on free ports, never 6379."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import hypothesis
import pytest

from stream.devtools.apache_kafka import KafkaCluster
from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.redis_cluster import LocalRedisCluster
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.brokers import KAFKA_USERS, Broker
from tests.support.kafka_proxy import KafkaProxy
from tests.support.redis_reset import clean_redis

_prefixes = itertools.count(1)

# In CI (CI set; .ci/run sets it) every run draws the same examples: derandomize=True seeds each
# test from its own source and keeps no example database, so a red build is never a new draw.
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def broker(stack_dir: Path) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(stack_dir).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One node of Apache Kafka (KRaft, PLAINTEXT on ``kafka.bootstrap``) for the tests that need
    what Tansu lacks: transactions, DeleteRecords and retention, compaction. One per test
    process, started on first use (8-20 s: a JVM; the first run on a machine also fetches the
    jars, see scripts/ensure-kafka)."""
    k = KafkaCluster(tmp_path_factory.mktemp("kafka")).start()
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three nodes of Apache Kafka (each broker and controller, KRaft), one per test process.

    - ``bootstrap``: PLAINTEXT listeners of all three, no authentication (brokers talk to each
      other over it too).
    - ``ssl_bootstrap``: TLS listeners; the server certificate (CN localhost, SAN 127.0.0.1)
      is signed by a test CA made at start: ``ca.ca_file`` is its PEM for clients to trust
      (``ca.cert_file``/``ca.key_file`` the server's pair, ``ca.keystore`` its PKCS12).
    - ``sasl_ssl_bootstrap``: TLS plus SASL SCRAM-SHA-512; ``users`` are the SCRAM users made
      by Kafka's own StorageTool at format time (KAFKA_USERS: name -> password).
    - Replication factor 3 and ``min.insync.replicas=2`` by default for new topics and the
      internal ones (create the project's topics with ``ensure_topics(..., replication=3,
      min_insync=2)`` to say it explicitly).
    - ``kill(node_id)`` (kill -9, node ids 1..3) and ``start_node(node_id)`` for failover tests;
      the next test gets the cluster with every node up (``start_node`` waits for that).
    No authorizer is configured: every authenticated user may do anything."""
    c = KafkaCluster(
        tmp_path_factory.mktemp("kafka-cluster"), nodes=3, secured=True, users=KAFKA_USERS
    ).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[KafkaProxy, EmbeddedBroker]]:
    """A broker of its own that clients reach only through a KafkaProxy
    (tests/support/kafka_proxy.py): use ``proxy.bootstrap``."""
    broker = EmbeddedBroker(tmp_path / "proxied")
    proxy = KafkaProxy(broker.port).start()
    broker.advertised_port = proxy.port
    try:
        broker.start()
        yield proxy, broker
    finally:
        broker.stop()
        proxy.stop()


@pytest.fixture(scope="session")
def redis_server(stack_dir: Path) -> Iterator[EmbeddedRedis]:
    r = EmbeddedRedis(stack_dir, appendonly=True).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A local 3-primary Redis Cluster for a test module (stream/devtools/redis_cluster.py)."""
    c = LocalRedisCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """A clean database on OUR redis-server (restarted if a test left it stopped)."""
    return clean_redis(redis_server)


@pytest.fixture
def topics() -> Topics:
    """Topic names with a prefix of their own, so tests never see each other's messages."""
    return Topics(f"t{next(_prefixes)}-{id(object()) % 100000}.")


@pytest.fixture
async def created_topics(broker: Broker, topics: Topics) -> AsyncIterator[Topics]:
    """``topics`` created (4 partitions) on ``broker``: Tansu, or what a module puts in its
    place (tests/chaos/test_exactly_once_kafka.py)."""
    await ensure_topics(broker.bootstrap, topics, partitions=4)
    yield topics
