"""Drop an ``event_id`` the collector already accepted for the same shop within the window.

A claim is ``SET us:{shop}:col:<event_id> NX EX window`` in Redis, shared by every collector:
the first request to claim an id produces it, a retried beacon finds the claim and is told its
events are accepted without producing them again. Claims of events the broker did not take are
released, so the client's retry produces them.
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.state import keys as redis_keys
from stream.state.redis import AnyRedis

Ident = tuple[str, str]  # (shop_id, event_id)


class Deduper:
    def __init__(self, redis: AnyRedis, window_s: int) -> None:
        self._redis = redis
        self.window_s = window_s

    async def claim(self, idents: Sequence[Ident]) -> list[bool]:
        """True for each id claimed now, False for one already claimed within the window."""
        if not idents:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for shop, event_id in idents:
            pipe.set(redis_keys.collected(shop, event_id), b"1", nx=True, ex=self.window_s)
        replies = await pipe.execute()
        return [bool(r) for r in replies]

    async def release(self, idents: Sequence[Ident]) -> None:
        if not idents:
            return
        pipe = self._redis.pipeline(transaction=False)
        for shop, event_id in idents:
            pipe.delete(redis_keys.collected(shop, event_id))
        await pipe.execute()
