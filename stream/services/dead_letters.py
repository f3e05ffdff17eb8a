"""Dead-letter sink on Kafka: a bounded copy of the original (schemas/dead_letter.py), the
reason in a header and in the value.

A service so the worker starts it (its producer needs the running loop and the broker) and
stops it (flushing what is in flight). A dead letter is bounded, so the broker cannot refuse it
for its size; any failure to send is retried with backoff until it is acknowledged (a batch is
applied only after its dead letters are), counted in ``upsell_dead_letter_send_failures_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from schemas.dead_letter import (
    DeadLetter,
    dead_letter_headers,
    dead_letter_key,
    dead_letter_value,
    reason_code,
)
from stream.backoff import Backoff
from stream.dates.clock import Clock
from stream.kafka.clients import make_producer
from stream.kafka.security import KafkaTarget
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)


class KafkaDeadLetterSink(Service):
    def __init__(self, target: KafkaTarget, topic: str, telemetry: Telemetry, clock: Clock) -> None:
        super().__init__()
        self._target = target
        self._topic = topic
        self._telemetry = telemetry
        self._clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        backoff = Backoff(first_s=0.5, max_s=5.0)
        while not self.should_stop:
            producer = make_producer(self._target)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("dead-letter producer cannot reach the broker yet (%s)", exc)
                await producer.stop()
                await backoff.wait()
                continue
            self._producer = producer
            self._ready.set()
            return

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send and wait for the broker's acknowledgement of every letter, retrying failures with
        backoff (a resend may repeat a letter: dead letters are at least once)."""
        await self._ready.wait()
        now = self._clock()
        records = [
            (
                dead_letter_key(letter.key),
                dead_letter_value(
                    topic=letter.topic,
                    partition=letter.partition,
                    offset=letter.offset,
                    reason=letter.reason,
                    detail=letter.detail,
                    raw=letter.value,
                    now=now,
                    key_bytes=len(letter.key) if letter.key is not None else None,
                    last_offset=letter.last_offset,
                ),
                dead_letter_headers(letter.reason, letter.topic),
            )
            for letter in letters
        ]
        backoff = Backoff(first_s=0.2, max_s=10.0)
        while True:
            try:
                await self._send_all(records)
                break
            except KafkaError as exc:
                self._telemetry.dead_letter_send_failures.inc()
                log.warning(
                    "sending %d dead letters failed (%s: %s); retrying in %.1f s",
                    len(records),
                    type(exc).__name__,
                    exc,
                    backoff.delay,
                )
                await backoff.wait()
        for letter in letters:
            self._telemetry.dead_letters.labels(reason_code(letter.reason)).inc()

    async def _send_all(
        self, records: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None:
        assert self._producer is not None
        pending = [
            await self._producer.send(self._topic, key=key, value=value, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*pending)
