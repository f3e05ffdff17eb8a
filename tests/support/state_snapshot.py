"""Read the counters a worker wrote into plain dicts, to compare with the reference aggregator."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from stream.state.redis import AnyRedis

COUNTER_KINDS = (b"day", b"grp", b"var", b"trn", b"xp")


def text(raw: bytes | str) -> str:
    """A name or field from a client that does not decode responses (typed as either)."""
    return raw.decode() if isinstance(raw, bytes) else raw


async def counters(redis: AnyRedis) -> dict[str, dict[str, int]]:
    """Every counter hash (day, group, variation, transition, exposures) -> {field: value}, no
    zeros; on a Redis Cluster, of every primary. Exposures' sums are HINCRBYFLOAT's: whole
    numbers in the tests' events, read as integers."""
    out: dict[str, dict[str, int]] = {}
    async for raw in redis.scan_iter(match=b"us:{*}:*", count=1000):
        kind = raw.split(b"}:", 1)[1].split(b":", 1)[0]
        if kind not in COUNTER_KINDS:
            continue
        fields = await redis.hgetall(raw)
        values = {text(f): int(v) for f, v in fields.items() if int(v) != 0}
        if values:
            out[raw.decode()] = values
    return out


async def upgraders(redis: Redis) -> dict[str, int]:
    out: dict[str, int] = {}
    async for raw in redis.scan_iter(match=b"us:{*}:hll:*", count=1000):
        out[raw.decode()] = int(await redis.pfcount(raw))
    return out


async def ledger_sizes(redis: Redis) -> dict[str, int]:
    out: dict[str, int] = {}
    async for raw in redis.scan_iter(match=b"us:{*}:ledger", count=1000):
        out[raw.decode()] = int(await redis.zcard(raw))
    return out


async def generations(redis: Redis) -> dict[bytes, int]:
    """Each partition checkpoint's owner generation (a claim bumps it)."""
    out = {}
    async for key in redis.scan_iter(match="us:part:*"):
        out[key] = int(await redis.hget(key, "gen") or 0)
    return out


def diff(expected: dict[str, Any], actual: dict[str, Any], limit: int = 10) -> list[str]:
    """Human-readable differences, at most ``limit`` of them."""
    lines = []
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key) != actual.get(key):
            lines.append(f"{key}: expected {expected.get(key)!r}, got {actual.get(key)!r}")
            if len(lines) >= limit:
                break
    return lines
