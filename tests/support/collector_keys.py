"""Write keys for tests, made through the same registry the CLI uses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from stream.collector.keys import KeyKind, KeyRegistry
from stream.state.redis import connect


def make_key(redis_url: str, shop: str, kind: str, origins: Iterable[str] = ()) -> str:
    async def run() -> str:
        redis = connect(redis_url, cluster=False)
        try:
            return await KeyRegistry(redis, 0).add(shop, KeyKind(kind), list(origins))
        finally:
            await redis.aclose()

    return asyncio.run(run())
