"""The dead-letter record written to ``upsell.dead-letters``: why and where from, and a bounded
copy of the original (its first 16 KiB, its size and SHA-256), so a dead letter always fits in a
Kafka request whatever arrived. The reason travels in a header too, so tools can route without
parsing."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from schemas.models import Rejected
from schemas.timestamps import utc_text

KEPT_BYTES = 16 * 1024  # of the original value, as text (when UTF-8) and as base64
KEPT_KEY_BYTES = 1024  # of the original key, used as the dead letter's key
DETAIL_CHARS = 1000
# What a dead letter's value weighs at most: the kept bytes as JSON text (6 bytes each at worst,
# for escaped control characters) and as base64 (4/3), the detail (escaped the same way) and the
# fixed fields: 16 KiB * (6 + 4/3) + 6,000 + ~500 < 128 KiB, far below a Kafka request's 1 MiB.
MAX_RECORD_BYTES = 128 * 1024


class KafkaMessage(Protocol):
    """Where a consumed message came from and its bytes (Faust's Message, aiokafka's record)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    last_offset: int | None = None  # a range of offsets at once (an unreadable batch)

    @classmethod
    def of(cls, message: KafkaMessage, rejected: Rejected) -> DeadLetter:
        """The dead letter of one consumed message and why it was rejected."""
        return cls(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            rejected.reason,
            rejected.detail,
        )


class DeadLetterSink(Protocol):
    async def send(self, letters: Sequence[DeadLetter]) -> None: ...


def dead_letter_value(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    detail: str,
    raw: bytes | None,
    now: datetime,
    key_bytes: int | None = None,
    last_offset: int | None = None,
) -> bytes:
    kept = raw[:KEPT_BYTES] if raw is not None else None
    source: dict[str, object] = {"topic": topic, "partition": partition, "offset": offset}
    if last_offset is not None:
        source["last_offset"] = last_offset
    return orjson.dumps(
        {
            "reason": reason,
            "detail": detail[:DETAIL_CHARS],
            "source": source,
            "failed_at": utc_text(now),
            "original": _text(kept),
            "original_b64": base64.b64encode(kept).decode() if kept is not None else None,
            "original_bytes": len(raw) if raw is not None else None,
            "original_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None,
            "truncated": raw is not None and len(raw) > KEPT_BYTES,
            "key_bytes": key_bytes,
        }
    )


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The original key, cut to its first KiB (a dead letter's key is bounded too)."""
    return key[:KEPT_KEY_BYTES] if key is not None else None


def _text(kept: bytes | None) -> str | None:
    """The kept bytes as text when they are UTF-8 (a character cut at the end is dropped)."""
    if kept is None:
        return None
    for cut in range(4):
        try:
            return kept[: len(kept) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def dead_letter_headers(reason: str, topic: str) -> list[tuple[str, bytes]]:
    return [("reason", reason.encode()), ("source_topic", topic.encode())]


def reason_code(reason: str) -> str:
    """The bounded part of a reason, for metric labels: ``missing_field:x`` -> ``missing_field``."""
    return reason.split(":", 1)[0]
