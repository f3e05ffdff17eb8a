"""Redis clients by URL, whether a bounded pool is busy, and which errors mean "wait and retry"."""

from __future__ import annotations

from redis import exceptions as rx

from stream.settings.redis import RedisConnection
from stream.state.connection import AnyRedis, open_redis

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
    """A client of one Redis or a Cluster by URL alone (tools and tests); the service's own
    clients come from :func:`stream.state.connection.open_redis` with its connection settings
    (TLS, password file, Sentinel), which this calls."""
    return open_redis(
        RedisConnection(url=url, cluster=cluster), max_connections=max_connections, wait_s=wait_s
    )


def pool_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says every connection of a bounded pool is taken (the waiting pool's
    "No connection available." or the Cluster's "Too many connections"), not Redis gone."""
    if isinstance(exc, rx.MaxConnectionsError):
        return True
    return isinstance(exc, rx.ConnectionError) and str(exc) in _POOL_BUSY


_POOL_BUSY = ("No connection available.", "Too many connections")
