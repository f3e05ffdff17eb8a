"""A Kafka record as the Ingestor sees one (what aiokafka's ConsumerRecord offers it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
