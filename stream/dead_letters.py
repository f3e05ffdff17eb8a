"""Dead-letter sink on Kafka: original key and bytes, the reason in a header and in the value."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from schemas.dead_letter import dead_letter_headers, dead_letter_value, reason_code
from stream.clock import Clock
from stream.ingest import DeadLetter
from stream.telemetry import Telemetry


class KafkaDeadLetterSink:
    def __init__(
        self, producer: AIOKafkaProducer, topic: str, telemetry: Telemetry, clock: Clock
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._telemetry = telemetry
        self._clock = clock

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send and wait for the broker's acknowledgement of every letter."""
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
