"""Produces a request's records with acks=all and reports which ones the broker acknowledged.

Every send ends within aiokafka's own ``request_timeout_ms`` (metadata waits and expired batches
fail their futures), so a request waits for all of its futures to settle: nothing is left in
flight when the collector answers 503, and its retry cannot race a late delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream.backoff import Backoff
from stream.collector.request_body import Record
from stream.collector.telemetry import CollectorTelemetry
from stream.kafka.clients import make_producer
from stream.kafka.security import KafkaTarget, connection_of

log = logging.getLogger(__name__)
START_RETRY_S = 1.0  # a steady retry: requests get 503 meanwhile, none waits for it


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge every record; ``acked`` holds the indexes it did."""

    def __init__(self, acked: set[int], cause: str) -> None:
        super().__init__(cause)
        self.acked = acked


class EventProducer:
    def __init__(self, target: KafkaTarget, timeout_ms: int, telemetry: CollectorTelemetry) -> None:
        self._target = target
        self._bootstrap = connection_of(target).bootstrap
        self._timeout_ms = timeout_ms
        self._telemetry = telemetry
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    def start_in_background(self) -> None:
        """Connect now or as soon as the broker answers; until then requests get 503."""
        self._starting = asyncio.get_running_loop().create_task(self._start_until_up())

    async def _start_until_up(self) -> None:
        backoff = Backoff(first_s=START_RETRY_S, max_s=START_RETRY_S)
        while True:
            producer = make_producer(
                self._target,
                linger_ms=1,
                request_timeout_ms=self._timeout_ms,
                retry_backoff_ms=100,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("broker %s not reachable yet: %s", self._bootstrap, exc)
                await producer.stop()
                await backoff.wait()
                continue
            self._producer = producer
            log.info("producing to %s with acks=all", self._bootstrap)
            return

    async def stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_all(self, records: Sequence[Record]) -> None:
        """Return once the broker acknowledged every record; else raise BrokerUnavailable."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable(set(), "not connected to the broker yet")
        started = time.perf_counter()
        results = await asyncio.gather(
            *(self._send_one(producer, r) for r in records), return_exceptions=True
        )
        self._telemetry.produce_seconds.observe(time.perf_counter() - started)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            acked = {rec.index for rec, res in zip(records, results, strict=True) if res is None}
            raise BrokerUnavailable(acked, str(failures[0]) or type(failures[0]).__name__)

    @staticmethod
    async def _send_one(producer: AIOKafkaProducer, record: Record) -> None:
        delivered = await producer.send(
            record.topic, key=record.shop_id.encode(), value=record.value
        )
        await delivered
