"""The worker's app factory: builds every client and component explicitly and wires them into
Faust (the collector's is :mod:`stream.collector.app`).

Faust owns the worker lifecycle (start, stop, signals), hosts our services (the batch engine,
the start-up bootstrapper, the Kafka producer) and the web server; the low-volume topics run as
Faust agents. Nothing below reaches for globals or the environment: it all comes from
``settings`` and the arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import faust
from mode import Service
from prometheus_client.process_collector import ProcessCollector

from consumers import counting_routes
from schemas.decoder import Decoder
from stream import __version__
from stream.dates.clock import Clock, system_clock
from stream.engines import batch as batch_engine
from stream.engines import faust as faust_engine
from stream.engines.engine import Build, Engine
from stream.engines.lag_watch import KafkaHighWatermarks, LagWatch
from stream.http.application import build_web, serving_redis
from stream.http.readiness import WorkerReadiness
from stream.http.server import ApiServer
from stream.ingest.ingestor import Ingestor
from stream.kafka.faust_clients import faust_credentials, set_fetch_max_wait_ms
from stream.services import shop_settings, subscriber_counts
from stream.services.changelog_wiring import StateChangelog
from stream.services.dead_letters import KafkaDeadLetterSink
from stream.services.retention_sweep import RetentionSweep
from stream.services.startup import Bootstrapper
from stream.settings import EngineName, Settings
from stream.state.connection import close_redis, memory_figures, open_redis
from stream.state.health import RedisPing, StoreHealth
from stream.state.redis import AnyRedis, RedisStore
from stream.state.shop_directory import ShopDirectory
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

# UPSELL_ENGINE -> the builder of the engine of the counted topics
ENGINES: Mapping[EngineName, Build] = {"batch": batch_engine.build, "faust": faust_engine.build}


class RedisCloser(Service):
    """Closes the Redis client when the worker stops."""

    def __init__(self, redis: AnyRedis) -> None:
        super().__init__()
        self.redis = redis

    async def on_stop(self) -> None:
        await close_redis(self.redis)


@dataclass
class Worker:
    """Everything one worker process runs, for the CLI and for tests."""

    app: faust.App
    settings: Settings
    telemetry: Telemetry
    store: RedisStore
    ingestor: Ingestor
    bootstrapper: Bootstrapper
    engine: Engine


def _host(app: faust.App, service: Service) -> None:
    """Have Faust start ``service`` with the app (typed for classes; takes instances too)."""
    app.service(service)  # type: ignore[arg-type]


def faust_app(settings: Settings) -> faust.App:
    s = settings
    return faust.App(
        s.consumer_group,
        broker=[f"kafka://{server}" for server in s.kafka_bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=str(s.data_dir),
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        broker_session_timeout=s.session_timeout_s,
        broker_heartbeat_interval=s.heartbeat_interval_s,
        broker_request_timeout=max(40.0, s.session_timeout_s + 5),
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        stream_wait_empty=False,
        producer_acks=-1,  # all in-sync replicas (nothing of ours produces through Faust today)
        broker_credentials=faust_credentials(s.kafka),
    )


def build_worker(settings: Settings, *, clock: Clock = system_clock) -> Worker:
    s = settings
    telemetry = _worker_telemetry(s)
    # Counting and serving never share a connection (stream/state/connection.py, open_redis).
    redis = open_redis(s.redis, max_connections=s.redis_counting_connections)
    serving = serving_redis(s)
    health = StoreHealth(telemetry)
    store = _counting_store(s, redis, health)
    directory = ShopDirectory(store, max_entries=s.shop_cache_entries)
    dead_letters = KafkaDeadLetterSink(s.kafka, s.topics.dead_letters, telemetry, clock)
    ingestor = _ingestor(s, store, directory, dead_letters, telemetry, clock)
    _watch_caches(telemetry, ingestor, directory, store)
    app = faust_app(s)
    # Faust's consumer serves the agents of both engines: read_committed and our fetch wait.
    set_fetch_max_wait_ms(s.fetch_max_wait_ms)
    boot = Bootstrapper(s, directory, store, health, clock, _changelog(app, s, store, telemetry))
    for service in (
        RedisCloser(redis),
        RedisCloser(serving),
        dead_letters,
        boot,
        RedisPing(store, memory=lambda: memory_figures(redis), telemetry=telemetry),
        RetentionSweep(
            store=store, telemetry=telemetry, clock=clock, retention_days=s.retention_days
        ),
    ):
        _host(app, service)
    engine = ENGINES[s.engine](
        app,
        s,
        ingestor=ingestor,
        telemetry=telemetry,
        health=health,
        ready_to_count=boot.ready_to_count,
    )
    _host(app, _lag_watch(s, ingestor, telemetry, engine.highwater))
    _register_agents(
        app,
        s,
        directory=directory,
        store=store,
        dead_letters=dead_letters,
        health=health,
        clock=clock,
    )
    readiness = WorkerReadiness(
        bootstrap=s.kafka_bootstrap,
        store=store,
        settings_loaded=boot.ready_to_count.is_set,
        state_format_known=lambda: boot.state_format_known,
        partitions_assigned=lambda: engine.joined,
        records_lost=lambda: dict(ingestor.records_lost),
    )
    web_app = build_web(
        redis=serving, settings=s, telemetry=telemetry, readiness=readiness, clock=clock
    )
    app.web_server(ApiServer(web_app, s.api_host, s.api_port))
    return Worker(app, s, telemetry, store, ingestor, boot, engine)


def _counting_store(s: Settings, redis: AnyRedis, health: StoreHealth) -> RedisStore:
    """The store the engines count into, its outcomes watched by ``health``."""
    return RedisStore(
        redis,
        cluster=s.redis_cluster,
        on_outcome=health.observe,
        day_index_entries=s.shop_cache_entries,
        shops_per_call=s.apply_shops_per_call,
        changelog=s.changelog,
        calls_in_flight=s.apply_calls_in_flight,
    )


def _changelog(
    app: faust.App, s: Settings, store: RedisStore, telemetry: Telemetry
) -> Callable[[], Awaitable[object]] | None:
    """The state changelog: its flusher hosted, its restore for the start-up (None without)."""
    if (changelog := StateChangelog.build(s, store, telemetry.registry)) is not None:
        _host(app, changelog.flusher)
    return changelog.restore if changelog is not None else None


def _ingestor(
    s: Settings,
    store: RedisStore,
    directory: ShopDirectory,
    dead_letters: KafkaDeadLetterSink,
    telemetry: Telemetry,
    clock: Clock,
) -> Ingestor:
    return Ingestor(
        routes=counting_routes(s.topics),
        store=store,
        shops=directory,
        dead_letters=dead_letters,
        telemetry=telemetry,
        clock=clock,
        retention_days=s.retention_days,
        decoder=Decoder(max_shops=s.shop_cache_entries),
        shop_cache_entries=s.shop_cache_entries,
        shop_offsets_per_partition=s.shop_offsets_per_partition,
    )


def _lag_watch(
    s: Settings,
    ingestor: Ingestor,
    telemetry: Telemetry,
    fetch_highwater: Callable[[str, int], int | None],
) -> LagWatch:
    return LagWatch(
        ingestor=ingestor,
        telemetry=telemetry,
        topics=s.topics.counted,
        watermarks=KafkaHighWatermarks(s.kafka, f"{s.worker_id}-lag"),
        fetch_highwater=fetch_highwater,
    )


def _watch_caches(
    telemetry: Telemetry, ingestor: Ingestor, directory: ShopDirectory, store: RedisStore
) -> None:
    """upsell_cache_entries for every per-shop cache of the worker (README, "Memory")."""
    sizes: dict[str, Callable[[], float]] = {
        "shop_settings": directory.__len__,
        "day_index": store.day_index.__len__,
        **ingestor.cache_sizes(),
    }
    for name, size in sizes.items():
        telemetry.watch_cache(name, size)


def _worker_telemetry(s: Settings) -> Telemetry:
    telemetry = Telemetry()
    ProcessCollector(registry=telemetry.registry)
    telemetry.worker_info.info(
        {
            "version": __version__,
            "engine": s.engine,
            "partitions": str(s.partitions),
            "batch_max_events": str(s.batch_max_events),
            "redis_cluster": str(s.redis_cluster).lower(),
        }
    )
    return telemetry


def _register_agents(
    app: faust.App,
    s: Settings,
    *,
    directory: ShopDirectory,
    store: RedisStore,
    dead_letters: KafkaDeadLetterSink,
    health: StoreHealth,
    clock: Clock,
) -> None:
    """The Faust agents of the settings-like topics: shop settings and subscriber counts."""
    shop_settings.register(
        app,
        s.topics.shops,
        directory=directory,
        dead_letters=dead_letters,
        health=health,
        clock=clock,
    )
    subscriber_counts.register(
        app,
        s.topics.subscriber_counts,
        store=store,
        dead_letters=dead_letters,
        health=health,
        clock=clock,
        retention_days=s.retention_days,
    )
