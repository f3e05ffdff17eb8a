"""``upsell-stream send KIND``: one event from the command line, through a collector (with a
write key) or straight to Kafka.

The event is built from the options, then checked by the worker's own decoder before anything
is sent, so a bad option is one line and exit 2 instead of a dead letter. Through a collector
the answer's ``rejected`` reason is the line; straight to Kafka the record goes keyed by
``shop_id`` to the kind's topic, as the collector would produce it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from schemas.decode import decode
from schemas.models import Rejected
from schemas.timestamps import utc_text
from stream.collector.request_body import KINDS
from stream.kafka.clients import make_producer
from stream.settings import Topics

# what the command calls a kind -> the collector's kind
SEND_KINDS = {
    "view": "banner_view",
    "click": "banner_click",
    "upgrade": "upgrade",
    "downgrade": "downgrade",
}
KAFKA_TIMEOUT_S = 10.0


class SendError(RuntimeError):
    """The event was not sent; ``code`` 2 for a bad event, 1 for a collector or broker that
    could not be reached or refused it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class EventOptions:
    kind: str  # view, click, upgrade, downgrade
    shop: str
    group: str | None = None
    variation: str | None = None
    subscriber: str | None = None
    order: str | None = None
    revenue_minor: int = 0
    currency: str = "USD"
    from_plan: str = "monthly"
    to_plan: str = "annual"
    from_mrr_minor: int = 0
    to_mrr_minor: int = 0
    event_id: str | None = None
    occurred_at: str | None = None


def build_event(o: EventOptions, now: datetime) -> dict[str, Any]:
    """The event the options describe, with a fresh ``event_id`` and ``occurred_at`` now unless
    given; absent options stay absent (the decoder says which one is missing)."""
    event: dict[str, Any] = {
        "event_id": o.event_id or f"cli-{uuid.uuid4()}",
        "shop_id": o.shop,
        "occurred_at": o.occurred_at or utc_text(now),
    }
    for name, value in (
        ("group_id", o.group),
        ("variation_id", o.variation),
        ("subscriber_id", o.subscriber),
    ):
        if value is not None:
            event[name] = value
    if o.kind in ("upgrade", "downgrade"):
        event["order_id"] = o.order or f"order-{uuid.uuid4().hex[:12]}"
        event["from"] = _plan(o.from_plan, o.from_mrr_minor)
        event["to"] = _plan(o.to_plan, o.to_mrr_minor)
        event["revenue_minor"] = o.revenue_minor
        event["currency"] = o.currency
    return event


def _plan(name: str, mrr_minor: int) -> dict[str, Any]:
    return {"product_ids": [name], "selling_plan_id": name, "mrr_minor": mrr_minor}


def check(kind: str, event: dict[str, Any], now: datetime, retention_days: int) -> None:
    """Raise :class:`SendError` (code 2) when the worker would dead-letter the event."""
    value = orjson.dumps(event)
    decoded = decode(KINDS[SEND_KINDS[kind]], event["shop_id"].encode(), value, now, retention_days)
    if isinstance(decoded, Rejected):
        raise SendError(f"the {kind} would be dead-lettered: {_option_hint(decoded.reason)}", 2)


def _option_hint(reason: str) -> str:
    """``missing_field:group_id`` -> ``missing_field:group_id (--group)``."""
    options = {
        "group_id": "--group",
        "variation_id": "--variation",
        "subscriber_id": "--subscriber",
        "shop_id": "--shop",
        "currency": "--currency",
        "occurred_at": "--occurred-at",
        "event_id": "--event-id",
    }
    field = reason.partition(":")[2]
    return f"{reason} ({options[field]})" if field in options else reason


def via_collector(url: str, key: str, kind: str, event: dict[str, Any], timeout_s: float) -> str:
    """POST the event to ``url``/v1/collect with ``key``; the line to print."""
    body = json.dumps({"events": [{"kind": SEND_KINDS[kind], **event}]}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/collect",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            doc = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise SendError(f"the collector answered {exc.code}: {_reason(exc.read())}", 1) from None
    except (OSError, ValueError) as exc:
        raise SendError(f"cannot reach the collector at {url}: {_cause(exc)}", 1) from None
    if doc.get("rejected"):
        raise SendError(f"the collector rejected the {kind}: {doc['rejected'][0]['reason']}", 2)
    dup = " (a duplicate: already accepted)" if doc.get("duplicates") else ""
    return f"sent {kind} {event['event_id']} for shop {event['shop_id']} via {url}{dup}"


def _reason(body: bytes) -> str:
    try:
        doc = json.loads(body)
        error = doc["error"]
        rejected = doc.get("rejected") or []
        extra = f" ({rejected[0]['reason']})" if rejected else ""
        return f"{error['code']}: {error['message']}{extra}"
    except (ValueError, KeyError, TypeError, IndexError):
        return body[:200].decode(errors="replace")


def _cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc) or type(exc).__name__


async def via_kafka(bootstrap: str, topics: Topics, kind: str, event: dict[str, Any]) -> str:
    """Produce the event to its topic keyed by ``shop_id``; the line to print."""
    topic = topics.of(KINDS[SEND_KINDS[kind]])
    producer = make_producer(bootstrap, request_timeout_ms=5000)  # acks=all, as every producer
    try:
        await asyncio.wait_for(producer.start(), KAFKA_TIMEOUT_S)
        meta = await asyncio.wait_for(
            producer.send_and_wait(topic, key=event["shop_id"].encode(), value=orjson.dumps(event)),
            KAFKA_TIMEOUT_S,
        )
    except (KafkaError, OSError, TimeoutError) as exc:
        raise SendError(f"cannot send to Kafka at {bootstrap}: {_cause(exc)}", 1) from None
    finally:
        await producer.stop()
    return (
        f"sent {kind} {event['event_id']} for shop {event['shop_id']} to {topic} "
        f"(partition {meta.partition}, offset {meta.offset})"
    )
