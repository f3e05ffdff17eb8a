"""``upsell-stream key add|list|revoke``: write keys in the Redis every collector reads.

Each function returns the lines to print; a refusal is a :class:`WriteKeyError` (one line)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from stream.collector.write_keys import (
    PUBLIC_PREFIX,
    SECRET_PREFIX,
    KeyKind,
    KeyRegistry,
    WriteKeyError,
)
from stream.settings import Settings
from stream.state.connection import close_redis, open_redis

ID_CHARS = 12
T = TypeVar("T")


async def _with_registry(settings: Settings, use: Callable[[KeyRegistry], Awaitable[T]]) -> T:
    redis = open_redis(settings.redis)
    try:
        return await use(KeyRegistry(redis, 0))
    finally:
        await close_redis(redis)


async def add_key(
    settings: Settings, shop: str, kind: str, origins: list[str], consent: bool = False
) -> list[str]:
    key = await _with_registry(settings, lambda r: r.add(shop, KeyKind(kind), origins, consent))
    note = "; the snippet waits for consent" if consent else ""
    return [
        f"{kind} write key for shop {shop} (shown once; only its SHA-256 is stored{note}):",
        key,
    ]


async def list_keys(settings: Settings, shop: str | None) -> list[str]:
    keys = await _with_registry(settings, lambda r: r.listed())
    rows = [k for k in keys if shop is None or k.shop_id == shop]
    lines = [f"{'id':<{ID_CHARS}}  {'kind':<6}  {'consent':<12}  shop  origins"]
    lines += [
        f"{k.key_id[:ID_CHARS]}  {k.kind.value:<6}  "
        f"{'required' if k.consent_required else 'not_required':<12}  {k.shop_id}  "
        f"{' '.join(sorted(k.origins))}"
        for k in rows
    ]
    return lines


async def revoke_key(settings: Settings, which: str) -> list[str]:
    """``which`` is the key itself or its id from ``key list`` (at least 8 hex characters)."""
    which = which.strip()
    if which.startswith((PUBLIC_PREFIX, SECRET_PREFIX)):
        gone = await _with_registry(settings, lambda r: r.revoke(which))
    elif re.fullmatch(r"[0-9a-f]{8,64}", which):
        gone = await _with_registry(settings, lambda r: r.revoke_id(which)) is not None
    else:
        raise WriteKeyError("give the key (upk_... or usk_...) or its id from key list (hex)")
    if not gone:
        raise WriteKeyError("no such key")
    delay = settings.collector.key_cache_s
    return [f"revoked; every collector refuses it within {delay:g} s"]
