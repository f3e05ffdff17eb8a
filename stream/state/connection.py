"""A redis-py client from a :class:`RedisConnection` (one Redis, a Cluster, or the master the
Sentinels name; TLS with a private CA; the password from a file), and the start-up check of
the settings under which Redis would lose counts."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlparse

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.sentinel import Sentinel

from stream.settings.redis import RedisConnection

log = logging.getLogger(__name__)

AnyRedis = Redis | RedisCluster

# Timeouts that fail fast enough for the worker to notice Redis is gone.
TIMEOUTS: dict[str, Any] = {
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
    "health_check_interval": 10,
}


def open_redis(
    conn: RedisConnection, *, max_connections: int | None = None, wait_s: float = 20.0
) -> AnyRedis:
    """A client with timeouts that fail fast enough for the worker to notice Redis is gone.

    With ``max_connections`` its pool is bounded: a caller that finds every connection taken
    waits up to ``wait_s`` for one, then gets redis-py's ConnectionError
    (:func:`stream.state.clients.pool_busy`). A worker gives counting and serving a pool each
    (``UPSELL_REDIS_COUNTING_CONNECTIONS``, ``UPSELL_REDIS_API_CONNECTIONS``): with one shared
    client, 400 concurrent timeseries requests of one token took redis-py's default 100
    connections and the engine paused counting ("Too many connections") three times in 7 s.
    On a Cluster the bound is per node, and behind Sentinel it is redis-py's plain pool: a full
    pool answers at once there (neither client has a waiting pool)."""
    opts: dict[str, Any] = dict(TIMEOUTS)
    if conn.password:
        opts["password"] = conn.password
    if conn.ca_file is not None:
        opts["ssl_ca_certs"] = str(conn.ca_file)
    if max_connections is not None and (conn.sentinels or conn.cluster):
        opts["max_connections"] = max_connections
    if conn.sentinels:
        return _sentinel_master(conn, opts)
    if conn.cluster:
        return RedisCluster.from_url(conn.url, **opts)
    if max_connections is None:
        return Redis.from_url(conn.url, **opts)
    pool = BlockingConnectionPool.from_url(
        conn.url, max_connections=max_connections, timeout=wait_s, **opts
    )
    return Redis.from_pool(pool)


def _sentinel_master(conn: RedisConnection, opts: dict[str, Any]) -> Redis:
    """The master the Sentinels name, re-asked on every new connection: after a failover the
    pool's next connection goes to the promoted replica (redis-py's SentinelConnectionPool).
    The URL gives the database, the user and the password and, with rediss://, TLS to both the
    Sentinels and Redis; its host is not used."""
    url = urlparse(conn.url)
    kwargs: dict[str, Any] = {**opts, "db": int((url.path or "/0").lstrip("/") or 0)}
    if url.username:
        kwargs["username"] = unquote(url.username)
    if url.password and "password" not in kwargs:
        kwargs["password"] = unquote(url.password)
    if conn.tls:
        kwargs["ssl"] = True
    sentinel_kwargs = {
        k: v
        for k, v in kwargs.items()
        if k in ("socket_timeout", "socket_connect_timeout", "ssl", "ssl_ca_certs")
    }
    sentinel = Sentinel(list(conn.sentinels), sentinel_kwargs=sentinel_kwargs, **kwargs)
    master: Redis = sentinel.master_for(conn.sentinel_master, redis_class=Redis)
    return master


async def close_redis(client: AnyRedis) -> None:
    """Close ``client`` and, behind Sentinel, the clients of the Sentinels it asks."""
    await client.aclose()
    pool = getattr(client, "connection_pool", None)  # a Cluster has one per node, no Sentinel
    manager = getattr(pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


class RedisUnsafe(Exception):
    """Redis is set up so that it would lose counts, and the settings say refuse."""


async def check_redis_config(client: AnyRedis, conn: RedisConnection) -> list[str]:
    """The reasons this Redis would lose counts (empty: none). Raises :class:`RedisUnsafe` with
    them when UPSELL_REDIS_CONFIG_CHECK=refuse; logs them when warn. A Redis that refuses CONFIG
    (managed services rename it) is logged and let through: its policy is the provider's."""
    if conn.config_check == "off":
        return []
    try:
        configs = await _configs(client)
    except rx.ResponseError as exc:
        log.warning(
            "cannot read Redis CONFIG (%s): maxmemory-policy and persistence unchecked", exc
        )
        return []
    problems: list[str] = []
    for config in configs:
        for problem in _problems(config):
            if problem not in problems:
                problems.append(problem)
    if problems and conn.config_check == "refuse":
        raise RedisUnsafe("; ".join(problems) + " (UPSELL_REDIS_CONFIG_CHECK=warn starts anyway)")
    for problem in problems:
        log.warning("Redis: %s", problem)
    return problems


def _problems(config: dict[str, str]) -> list[str]:
    problems = []
    policy = config.get("maxmemory-policy", "")
    if policy and policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy}: Redis evicts counters when full; set noeviction"
        )
    if config.get("appendonly", "no") != "yes" and not config.get("save", "").strip():
        problems.append('no persistence (appendonly no, save ""): a restart empties every count')
    return problems


async def _configs(client: AnyRedis) -> list[dict[str, str]]:
    """The settings of each Redis that holds counts (every primary of a Cluster)."""
    names = ("maxmemory-policy", "appendonly", "save")
    if isinstance(client, RedisCluster):
        return [
            _texts(await client.config_get(*names, target_nodes=node))
            for node in client.get_primaries()
        ]
    return [_texts(await client.config_get(*names))]


def _texts(answer: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in dict(answer).items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def memory_figures(client: AnyRedis) -> tuple[int, int]:
    """Redis's (used_memory, maxmemory); on a Cluster, the primary nearest its limit."""
    if isinstance(client, RedisCluster):
        figures = [
            _memory(await client.info("memory", target_nodes=node))
            for node in client.get_primaries()
        ]
        return max(figures, key=lambda f: f[0] / f[1] if f[1] else 0.0)
    return _memory(await client.info("memory"))


def _memory(info: Any) -> tuple[int, int]:
    return int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
