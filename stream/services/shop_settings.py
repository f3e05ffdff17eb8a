"""``upsell.shops`` (compacted): shop settings, consumed by a Faust agent into Redis.

Idempotent (last write wins, in log order), so a replay after a crash is harmless. A tombstone
deletes the shop's settings; anything else invalid is dead-lettered.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faust

from schemas.dead_letter import DeadLetter, DeadLetterSink
from schemas.decode import decode
from schemas.models import Kind, Rejected, ShopSettings
from stream.dates.clock import Clock
from stream.state.health import StoreHealth
from stream.state.shop_directory import ShopDirectory

KIND = Kind.SHOP


def register(
    app: faust.App,
    topic: str,
    *,
    directory: ShopDirectory,
    dead_letters: DeadLetterSink,
    health: StoreHealth,
    clock: Clock,
) -> Any:
    channel = app.topic(
        topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        compacting=True,
    )

    @app.agent(channel, name="shop-settings")
    async def shop_settings(stream: Any) -> None:
        async for ev in stream.events():
            msg = ev.message
            result = decode(KIND, msg.key, msg.value, clock())
            if isinstance(result, ShopSettings):
                change = {result.shop_id: result}
                await health.retry(partial(directory.write, change), "settings")
            elif isinstance(result, Rejected) and result.reason == "tombstone" and msg.key:
                removal: dict[str, ShopSettings | None] = {msg.key.decode(errors="replace"): None}
                await health.retry(partial(directory.write, removal), "settings")
            elif isinstance(result, Rejected):
                await dead_letters.send([DeadLetter.of(msg, result)])

    return shop_settings
