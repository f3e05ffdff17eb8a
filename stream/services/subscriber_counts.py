"""``upsell.subscriber-counts``: active-subscriber snapshots, the baseline of upgrade rate.

A snapshot is a value for a (shop, local date): storing it is idempotent, so the Faust agent
needs no offset bookkeeping of its own.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faust

from schemas.dead_letter import DeadLetter, DeadLetterSink
from schemas.decode import decode
from schemas.models import Kind, Rejected, SubscriberSnapshot
from stream.dates.clock import Clock
from stream.state.health import StoreHealth
from stream.state.store import SettingsStore

KIND = Kind.SUBSCRIBERS


def register(
    app: faust.App,
    topic: str,
    *,
    store: SettingsStore,
    dead_letters: DeadLetterSink,
    health: StoreHealth,
    clock: Clock,
    retention_days: int,
) -> Any:
    channel = app.topic(
        topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    ttl_s = retention_days * 86_400

    @app.agent(channel, name="subscriber-counts")
    async def subscriber_counts(stream: Any) -> None:
        async for ev in stream.events():
            msg = ev.message
            result = decode(KIND, msg.key, msg.value, clock(), retention_days)
            if isinstance(result, SubscriberSnapshot):
                snap = result
                await health.retry(
                    partial(
                        store.put_subscribers,
                        snap.shop_id,
                        snap.date,
                        snap.active_subscribers,
                        ttl_s,
                    ),
                    "subscribers",
                )
            elif isinstance(result, Rejected):
                await dead_letters.send([DeadLetter.of(msg, result)])

    return subscriber_counts
