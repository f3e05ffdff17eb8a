"""The collector's app factory: builds every part of one collector process from one
``Settings`` (``upsell-stream collector``; the worker's is :mod:`stream.app`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client.process_collector import ProcessCollector

from stream import __version__
from stream.collector.dedupe import Deduper
from stream.collector.intake import Intake, Limits
from stream.collector.limits import RateLimiter
from stream.collector.producer import EventProducer
from stream.collector.readiness import CollectorReadiness
from stream.collector.routes import build_collector_web
from stream.collector.telemetry import CollectorTelemetry
from stream.collector.write_keys import KeyRegistry
from stream.dates.clock import Clock, system_clock
from stream.settings import Settings
from stream.state.connection import AnyRedis, close_redis, open_redis


@dataclass
class Collector:
    """Everything one collector process runs (``upsell-stream collector``)."""

    web_app: web.Application
    settings: Settings
    telemetry: CollectorTelemetry
    producer: EventProducer
    redis: AnyRedis

    async def close(self) -> None:
        await self.producer.stop()
        await close_redis(self.redis)


def build_collector(settings: Settings, *, clock: Clock = system_clock) -> Collector:
    s, c = settings, settings.collector
    telemetry = CollectorTelemetry()
    telemetry.info.info({"version": __version__})
    ProcessCollector(registry=telemetry.registry)
    redis = open_redis(s.redis)
    producer = EventProducer(s.kafka, c.produce_timeout_ms, telemetry)
    intake = Intake(
        keys=KeyRegistry(redis, c.key_cache_s),
        limits=Limits(
            per_key=RateLimiter(c.key_rate_per_s, c.key_burst, c.limiter_entries),
            per_address=RateLimiter(c.address_rate_per_s, c.address_burst, c.limiter_entries),
        ),
        deduper=Deduper(redis, c.dedupe_window_s),
        producer=producer,
        telemetry=telemetry,
        topics=s.topics,
        retention_days=s.retention_days,
        clock=clock,
    )
    web_app = build_collector_web(
        intake=intake,
        telemetry=telemetry,
        readiness=CollectorReadiness(producer, redis),
        settings=c,
    )
    return Collector(web_app, s, telemetry, producer, redis)
