"""Every piece of the service's state in a Redis as plain, comparable values (type, value,
absolute expiry in ms), for tests that rebuild Redis and compare it with what it was."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis, RedisCluster

from tests.support.state_snapshot import text

# Bookkeeping that a rebuild need not reproduce: the changelog's own marks, leases and markers,
# the partition checkpoints (a worker's claim bumps their generation; compared apart), the
# retention sweep's markers and the collector's 15-minute dedupe claims.
_VOLATILE = ("us:cl:", "us:part:", "us:retention:")


def volatile(name: str) -> bool:
    return name.startswith(_VOLATILE) or name.endswith(":cl") or ":col:" in name


async def dump(client: Redis | RedisCluster) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async for raw in client.scan_iter(match=b"us:*", count=1000):
        name = text(raw)
        if volatile(name):
            continue
        kind = text(await client.type(raw))
        value: Any
        if kind == "hash":
            value = {text(f): text(v) for f, v in (await client.hgetall(raw)).items()}
        elif kind == "string":
            value = await client.get(raw)
        elif kind == "zset":
            pairs: Any = await client.zrange(raw, 0, -1, withscores=True)
            value = [(text(m), float(s)) for m, s in pairs]
        elif kind == "set":
            value = sorted(text(m) for m in await client.smembers(raw))
        else:
            value = kind
        expires = int(await client.pexpiretime(raw))
        out[name] = (kind, value, expires)
    return out


def differences(
    before: dict[str, Any], after: dict[str, Any], slack_ms: int = 2_000, limit: int = 10
) -> list[str]:
    """What differs, expiries equal within ``slack_ms`` (a TTL read, then set again)."""
    lines = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        same = (
            a is not None
            and b is not None
            and a[:2] == b[:2]
            and (a[2] == b[2] or (min(a[2], b[2]) > 0 and abs(a[2] - b[2]) <= slack_ms))
        )
        if not same:
            lines.append(f"{name!r}: before {b!r:.300}, after {a!r:.300}")
            if len(lines) >= limit:
                break
    return lines
