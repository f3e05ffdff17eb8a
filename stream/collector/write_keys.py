"""Write keys: which shop a caller may write for, which kinds, from which browser origins.

A key is shown once when it is made; Redis keeps only its SHA-256 (``us:wk:<digest>``), so every
collector sees the same keys and a revocation reaches all of them. Each collector trusts a
lookup for ``cache_s`` seconds: that is the longest a revoked key still works.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from stream.state import keys as redis_keys
from stream.state.changelog import key_item, mark_args, mark_script
from stream.state.changelog_cluster import mark_commands
from stream.state.redis import AnyRedis

PUBLIC_PREFIX = "upk_"
SECRET_PREFIX = "usk_"
BROWSER_KINDS = frozenset({"banner_view", "banner_click"})
ALL_KINDS = frozenset(
    {"banner_view", "banner_click", "upgrade", "downgrade", "shop", "subscriber_count"}
)
_CACHE_ENTRIES = 10_000


class KeyKind(StrEnum):
    PUBLIC = "public"  # browsers: views and clicks, from the shop's origins only
    SECRET = "secret"  # storefront servers: every kind


class WriteKeyError(ValueError):
    """A key cannot be made as asked (no origin for a public key, a bad shop id ...)."""


@dataclass(frozen=True, slots=True)
class WriteKey:
    key_id: str  # the key's SHA-256: names it in rate limits, never the key itself
    shop_id: str
    kind: KeyKind
    origins: frozenset[str]
    # the shop asks for the visitor's consent first: the snippet stores and sends nothing
    # before it, and the collector refuses a batch without ``"consent": true`` (403)
    consent_required: bool = False

    @property
    def kinds(self) -> frozenset[str]:
        return BROWSER_KINDS if self.kind is KeyKind.PUBLIC else ALL_KINDS

    def allows_origin(self, origin: str | None) -> bool:
        """Public keys only from their origins; secret keys from servers, whatever they send."""
        if self.kind is KeyKind.SECRET:
            return True
        return origin is not None and origin in self.origins


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(kind: KeyKind) -> str:
    prefix = PUBLIC_PREFIX if kind is KeyKind.PUBLIC else SECRET_PREFIX
    return prefix + secrets.token_urlsafe(24)


def normalise_origins(origins: Iterable[str]) -> frozenset[str]:
    out = set()
    for origin in origins:
        o = origin.strip().rstrip("/")
        scheme, sep, host = o.partition("://")
        if scheme not in ("http", "https") or not sep or not host or "/" in host:
            raise WriteKeyError(f"an origin is scheme://host[:port], got {origin!r}")
        out.add(o)
    return frozenset(out)


class KeyRegistry:
    """Write keys in Redis, with a short per-process cache (bounded) of lookups."""

    def __init__(
        self,
        redis: AnyRedis,
        cache_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._cache_s = cache_s
        self._now = monotonic
        self._cache: dict[str, tuple[float, WriteKey | None]] = {}
        self._one_redis = isinstance(redis, Redis)
        self._mark = mark_script(redis)

    async def add(
        self,
        shop_id: str,
        kind: KeyKind,
        origins: Iterable[str] = (),
        consent_required: bool = False,
    ) -> str:
        """Store a fresh key's digest and return the key (the only time it exists in clear)."""
        allowed = normalise_origins(origins)
        if kind is KeyKind.PUBLIC and not allowed:
            raise WriteKeyError("a public key needs at least one --origin (https://shop.example)")
        if consent_required and kind is not KeyKind.PUBLIC:
            raise WriteKeyError("--consent is for public keys (pages); servers send with consent")
        if not shop_id or len(shop_id) > 128:
            raise WriteKeyError("give the shop id the key writes for")
        key = new_key(kind)
        name = redis_keys.write_key(digest(key))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                name,
                mapping={
                    "shop": shop_id,
                    "kind": kind.value,
                    "origins": " ".join(sorted(allowed)),
                    "consent": "required" if consent_required else "not_required",
                },
            )
            await self._mark_changed(pipe, name)
            await pipe.execute()
        return key

    async def revoke(self, key: str) -> bool:
        """Delete the key; True when it existed. Collectors refuse it within ``cache_s``."""
        name = redis_keys.write_key(digest(key.strip()))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.execute_command("DEL", name)  # a Cluster pipeline's delete() is not queued
            await self._mark_changed(pipe, name)
            deleted, *_ = await pipe.execute()
        return bool(deleted)

    async def _mark_changed(self, pipe: Any, name: str) -> None:
        """The state changelog learns of the change in the same transaction (on a Cluster,
        its marks are in the key's slot: stream/state/changelog_cluster.py)."""
        if self._one_redis:
            names, args = mark_args(None, [key_item(name)])
            await self._mark(keys=names, args=args, client=pipe)
        else:
            mark_commands(pipe, None, [key_item(name)])

    async def listed(self) -> list[WriteKey]:
        """Every key (by its digest; the keys themselves are nowhere), by shop then id."""
        found = []
        async for name in self._redis.scan_iter(match=redis_keys.write_key("*"), count=1000):
            hashed = _text(name).rsplit(":", 1)[1]
            parsed = _parse(hashed, await self._redis.hgetall(name))
            if parsed is not None:
                found.append(parsed)
        return sorted(found, key=lambda k: (k.shop_id, k.key_id))

    async def revoke_id(self, prefix: str) -> str | None:
        """Revoke the one key whose digest starts with ``prefix`` (an id from ``key list``);
        its full digest, or None when no key has it. Raises when several do."""
        hits = [k.key_id for k in await self.listed() if k.key_id.startswith(prefix)]
        if len(hits) > 1:
            raise WriteKeyError(f"{prefix} names {len(hits)} keys; give more of the id")
        if not hits or not await self._redis.delete(redis_keys.write_key(hits[0])):
            return None
        return hits[0]

    async def lookup(self, key: str) -> WriteKey | None:
        hashed = digest(key)
        now = self._now()
        cached = self._cache.get(hashed)
        if cached is not None and cached[0] > now:
            return cached[1]
        raw = await self._redis.hgetall(redis_keys.write_key(hashed))
        found = _parse(hashed, raw) if raw else None
        if len(self._cache) >= _CACHE_ENTRIES:
            self._cache.clear()
        self._cache[hashed] = (now + self._cache_s, found)
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(hashed: str, raw: dict[bytes | str, bytes | str]) -> WriteKey | None:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    try:
        kind = KeyKind(fields.get("kind", ""))
    except ValueError:
        return None
    shop = fields.get("shop", "")
    if not shop:
        return None
    origins = frozenset(fields.get("origins", "").split())
    return WriteKey(hashed, shop, kind, origins, fields.get("consent") == "required")
