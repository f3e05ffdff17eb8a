"""Producing with a chosen compression codec through two independent clients: aiokafka, and
confluent-kafka (librdkafka, as storefront backends in other languages use)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message, Producer

from stream.kafka.clients import make_producer

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CLIENTS = ("aiokafka", "librdkafka")

Record = tuple[str, bytes | None, bytes | None]  # topic, key, value


async def produce_compressed(
    client: str, bootstrap: str, codec: str, records: Sequence[Record]
) -> None:
    """Send ``records`` compressed with ``codec``, waiting for every acknowledgement."""
    if client == "librdkafka":
        await asyncio.to_thread(_librdkafka, bootstrap, codec, records)
        return
    producer = make_producer(bootstrap, compression_type=None if codec == "none" else codec)
    await producer.start()
    try:
        await asyncio.gather(
            *[await producer.send(topic, key=key, value=value) for topic, key, value in records]
        )
    finally:
        await producer.stop()


def _librdkafka(bootstrap: str, codec: str, records: Sequence[Record]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            # the embedded broker answers no InitProducerId (FACTS.md), librdkafka's default is on
            "enable.idempotence": False,
            "acks": 1,
            "compression.type": codec,
            "linger.ms": 20,
            "log_level": 3,
        }
    )
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    for topic, key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(30)
    assert left == 0 and not failures, f"{left} unsent, failures: {failures[:3]}"
