"""Shared fixtures: a real embedded broker and a real redis-server on free ports, never 6379."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import hypothesis
import pytest

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.redis_cluster import LocalRedisCluster
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
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
async def created_topics(broker: EmbeddedBroker, topics: Topics) -> AsyncIterator[Topics]:
    await ensure_topics(broker.bootstrap, topics, partitions=4)
    yield topics
