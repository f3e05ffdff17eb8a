"""The dead-letter record written to ``upsell.dead-letters``: the original key and bytes, plus
why and where from. The reason travels in a header too, so tools can route without parsing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson


def dead_letter_value(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    detail: str,
    raw: bytes | None,
    now: datetime,
) -> bytes:
    original: str | None
    try:
        original = raw.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        original = None
    return orjson.dumps(
        {
            "reason": reason,
            "detail": detail,
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "failed_at": now.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "original": original,
            "original_b64": base64.b64encode(raw).decode() if raw is not None else None,
        }
    )


def dead_letter_headers(reason: str, topic: str) -> list[tuple[str, bytes]]:
    return [("reason", reason.encode()), ("source_topic", topic.encode())]


def reason_code(reason: str) -> str:
    """The bounded part of a reason, for metric labels: ``missing_field:x`` -> ``missing_field``."""
    return reason.split(":", 1)[0]
