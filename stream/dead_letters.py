"""Dead-letter sink on Kafka: original key and bytes, the reason in a header and in the value.

A service so the worker starts it (its producer needs the running loop and the broker) and
stops it (flushing what is in flight).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from schemas.dead_letter import dead_letter_headers, dead_letter_value, reason_code
from stream.clock import Clock
from stream.ingest import DeadLetter
from stream.kafka_clients import make_producer
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class KafkaDeadLetterSink(Service):
    def __init__(self, bootstrap: str, topic: str, telemetry: Telemetry, clock: Clock) -> None:
        super().__init__()
        self._bootstrap = bootstrap
        self._topic = topic
        self._telemetry = telemetry
        self._clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        delay = 0.5
        while not self.should_stop:
            producer = make_producer(self._bootstrap)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("dead-letter producer cannot reach the broker yet (%s)", exc)
                await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            self._ready.set()
            return

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send and wait for the broker's acknowledgement of every letter."""
        await self._ready.wait()
        assert self._producer is not None
        now = self._clock()
        pending = []
        for letter in letters:
            value = dead_letter_value(
                topic=letter.topic,
                partition=letter.partition,
                offset=letter.offset,
                reason=letter.reason,
                detail=letter.detail,
                raw=letter.value,
                now=now,
            )
            pending.append(
                await self._producer.send(
                    self._topic,
                    key=letter.key,
                    value=value,
                    headers=dead_letter_headers(letter.reason, letter.topic),
                )
            )
        await asyncio.gather(*pending)
        for letter in letters:
            self._telemetry.dead_letters.labels(reason_code(letter.reason)).inc()
