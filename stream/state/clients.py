"""Redis clients: timeouts, the bounded pools of counting and serving, and which errors mean
"wait and retry"."""

from __future__ import annotations

from typing import Any

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

AnyRedis = Redis | RedisCluster

# Errors after which waiting and retrying can help.
RETRIABLE = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.TryAgainError,
    rx.ClusterDownError,
    rx.MasterDownError,
    ConnectionError,
    OSError,
)


def connect(
    url: str, cluster: bool, *, max_connections: int | None = None, wait_s: float = 20.0
) -> AnyRedis:
    """A client with timeouts that fail fast enough for the worker to notice Redis is gone.

    With ``max_connections`` its pool is bounded: a caller that finds every connection taken
    waits up to ``wait_s`` for one, then gets redis-py's ConnectionError (:func:`pool_busy`).
    A worker gives counting and serving a pool each (``UPSELL_REDIS_COUNTING_CONNECTIONS``,
    ``UPSELL_REDIS_API_CONNECTIONS``): with one shared client, 400 concurrent timeseries
    requests of one token took redis-py's default 100 connections and the engine paused
    counting ("Too many connections") three times in 7 s. On a Cluster the bound is per node
    and a full node answers at once (redis-py's cluster client has no waiting pool)."""
    opts: dict[str, Any] = {
        "socket_timeout": 5.0,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 10,
    }
    if cluster:
        if max_connections is not None:
            opts["max_connections"] = max_connections
        return RedisCluster.from_url(url, **opts)
    if max_connections is None:
        return Redis.from_url(url, **opts)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_s, **opts
    )
    return Redis.from_pool(pool)


def pool_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says every connection of a bounded pool is taken (the waiting pool's
    "No connection available." or the Cluster's "Too many connections"), not Redis gone."""
    if isinstance(exc, rx.MaxConnectionsError):
        return True
    return isinstance(exc, rx.ConnectionError) and str(exc) in _POOL_BUSY


_POOL_BUSY = ("No connection available.", "Too many connections")
