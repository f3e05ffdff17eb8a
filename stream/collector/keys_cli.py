"""``upsell-stream key add|revoke``: write keys in the Redis every collector reads."""

from __future__ import annotations

import asyncio
import sys

from stream.collector.keys import KeyKind, KeyRegistry, WriteKeyError
from stream.settings import Settings
from stream.state.connection import open_redis


def add_key(settings: Settings, shop: str, kind: str, origins: list[str]) -> int:
    async def run() -> str:
        redis = open_redis(settings.redis)
        try:
            return await KeyRegistry(redis, 0).add(shop, KeyKind(kind), origins)
        finally:
            await redis.aclose()

    try:
        key = asyncio.run(run())
    except WriteKeyError as exc:
        print(f"upsell-stream: {exc}", file=sys.stderr)
        return 2
    print(f"{kind} write key for shop {shop} (shown once; only its SHA-256 is stored):")
    print(key)
    return 0


def revoke_key(settings: Settings, key: str) -> int:
    async def run() -> bool:
        redis = open_redis(settings.redis)
        try:
            return await KeyRegistry(redis, 0).revoke(key)
        finally:
            await redis.aclose()

    if not asyncio.run(run()):
        print("upsell-stream: no such key", file=sys.stderr)
        return 1
    delay = settings.collector.key_cache_s
    print(f"revoked; every collector refuses it within {delay:g} s")
    return 0
