"""Write keys for tests, made through the same registry the CLI uses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from stream.collector.write_keys import KeyKind, KeyRegistry
from stream.state.redis import connect


def make_key(
    redis_url: str,
    shop: str,
    kind: str,
    origins: Iterable[str] = (),
    consent_required: bool = False,
) -> str:
    async def run() -> str:
        redis = connect(redis_url, cluster=False)
        try:
            registry = KeyRegistry(redis, 0)
            return await registry.add(shop, KeyKind(kind), list(origins), consent_required)
        finally:
            await redis.aclose()

    return asyncio.run(run())
