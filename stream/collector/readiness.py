"""The collector's readiness (``/readyz``): the producer is connected to the broker and Redis,
which holds the write keys, answers."""

from __future__ import annotations

from stream.collector.producer import EventProducer
from stream.state.redis import AnyRedis
from stream.web.readiness import Checks, answers_within


class CollectorReadiness:
    def __init__(self, producer: EventProducer, redis: AnyRedis, timeout_s: float = 1.0) -> None:
        self._producer = producer
        self._redis = redis
        self._timeout_s = timeout_s

    async def check(self) -> Checks:
        redis_ok = await answers_within(self._redis.ping, self._timeout_s)
        checks: dict[str, object] = {"broker": self._producer.started, "redis": redis_ok}
        return all(v is True for v in checks.values()), checks
