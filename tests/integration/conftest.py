"""A worker per engine kept for a whole test module: fewer worker starts where tests allow."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.workers import WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.collector_site import Site
from tests.support.e2e import collector_env, worker_env, workers
from tests.support.engine_worker import EngineWorker
from tests.support.redis_reset import clean_redis


@pytest.fixture(scope="module", params=["batch", "faust"])
def engine_worker(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    redis_server: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EngineWorker]:
    """One running worker per engine for the module's tests, on topics of its own and the
    session's Redis emptied once. For modules whose tests use shops of their own, read only
    their own records back and never restart the worker; no test of such a module may ask for
    ``redis_url``, which empties the Redis this worker counts into."""
    engine: str = request.param
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    redis_url = clean_redis(redis_server)
    topics = Topics(f"{name}-{engine}.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
    tmp = tmp_path_factory.mktemp(f"{name}-{engine}")
    (w,) = workers(worker_env(broker.bootstrap, redis_url, topics, engine), tmp, 1)
    try:
        w.start().wait_ready()
        yield EngineWorker(engine, topics, w)
    finally:
        w.stop()


@pytest.fixture(scope="module")
def site(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A collector for the module's tests, on topics ``col.`` (test_collector.py and
    test_collector_consent.py), with a public and a secret key for ``SHOP``."""
    tmp = tmp_path_factory.mktemp("collector")
    topics = Topics("col.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=4))
    env = collector_env(broker.bootstrap, redis_server.url, topics)
    collector = WorkerProcess(env, tmp, name="collector", role="collector")
    try:
        collector.start().wait_ready()
        yield Site(collector, topics, broker.bootstrap, redis_server.url)
    finally:
        collector.stop()
