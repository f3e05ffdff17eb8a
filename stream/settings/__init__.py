"""The one typed, immutable configuration object, built from the environment at the entry point.

Only the entry point (``stream/cli.py``) reads ``os.environ``: it calls
:func:`Settings.from_env` with it and hands the result to the app factory (``dev`` gets the
environment to pass on to the processes it starts, and ``stream/devtools/workers.py`` copies it
into the worker processes the tests and the bench start). The readers of one variable are
:mod:`stream.settings.env`, the topic names :mod:`stream.settings.topics`, the collector's
settings :mod:`stream.settings.collector`.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from stream.settings import counting
from stream.settings.collector import CollectorSettings
from stream.settings.env import SettingsError, read_bool, read_choice, read_float, read_int
from stream.settings.kafka import KafkaConnection, KafkaSecurity
from stream.settings.redis import RedisConnection
from stream.settings.topics import Topics

__all__ = [
    "CollectorSettings",
    "EngineName",
    "KafkaConnection",
    "KafkaSecurity",
    "LogFormat",
    "RedisConnection",
    "Settings",
    "SettingsError",
    "Topics",
]

EngineName = Literal["batch", "faust"]
LogFormat = Literal["text", "json"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")


@dataclass(frozen=True, slots=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    api_host: str = "0.0.0.0"
    api_port: int = 6066
    topic_prefix: str = "upsell."
    api_tokens_path: Path | None = None
    auth_enabled: bool = True
    engine: EngineName = "batch"
    cors_origins: tuple[str, ...] = ()
    api_max_range_days: int = 400  # the days a period (or its compare) may span
    api_max_heavy_queries: int = 4  # queries over > 31 days running at once per worker
    live_max_streams: int = 100
    # Redis connections: counting and serving each have a bounded pool of their own, so the API
    # can never take the engine's connections (docs/operations.md, "Sizing the pools").
    redis_counting_connections: int = 32
    redis_api_connections: int = 64
    api_busy_wait_ms: int = 250  # a request waits this long for an API connection, then 503
    # One token's fair share of a process (429 past it): requests in flight, heavy-query slots,
    # live streams; and the longest a live stream stays open before the client reconnects.
    token_max_requests: int = 16
    token_max_heavy_queries: int = 2
    token_max_streams: int = 10
    live_max_lifetime_s: float = 3600.0
    live_heartbeat_s: float = 15.0
    log_format: LogFormat = "text"
    log_level: str = "INFO"
    partitions: int = 8
    replication_factor: int = 1
    min_insync_replicas: int = 1
    retention_days: int = 800
    batch_max_events: int = 20_000
    batch_linger_ms: int = 50
    fetch_max_wait_ms: int = 100
    # Per-shop memory of a worker (README, "Memory"): each per-shop cache holds at most this many
    # entries, and each owned partition remembers at most shop_offsets_per_partition offsets.
    shop_cache_entries: int = 100_000
    shop_offsets_per_partition: int = 20_000
    apply_shops_per_call: int = 2_000  # one Redis: shops per apply-script call
    # the batch engine: records of one partition applied together (a fetch's partition batch is
    # split into batches of at most this many; docs/operations.md, "Sizing the pools and shares")
    apply_max_events: int = 20_000
    apply_calls_in_flight: int = 0  # one Redis: apply scripts sent at once per worker (0: all)
    # the state changelog (docs/state.md): on, its flush period, the idempotent producer (a
    # broker without InitProducerId, the embedded one, refuses it)
    changelog: bool = True
    changelog_flush_ms: int = 500
    changelog_idempotent: bool = False
    consumer_group: str = "upsell-stream"
    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.5
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    data_dir: Path = Path(".upsell-data")
    collector: CollectorSettings = field(default_factory=CollectorSettings)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    redis_options: RedisConnection | None = None  # None: redis_url and redis_cluster alone

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def kafka(self) -> KafkaConnection:
        """What every Kafka client of the service is built from."""
        return KafkaConnection(self.kafka_bootstrap, self.kafka_security)

    @property
    def redis(self) -> RedisConnection:
        """What every Redis client of the service is built from."""
        if self.redis_options is not None:
            return self.redis_options
        return RedisConnection(url=self.redis_url, cluster=self.redis_cluster)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from ``env`` (the entry point passes the process environment).

        Raises :class:`SettingsError` naming the first bad variable.
        """
        e = dict(env)
        d = cls()
        auth_enabled = _auth(e)
        tokens = _tokens_path(e, required=auth_enabled)
        return cls(
            **_connections(e, d),
            api_host=e.get("UPSELL_API_HOST", d.api_host) or d.api_host,
            api_port=read_int(e, "UPSELL_API_PORT", d.api_port, lo=1, hi=65535),
            topic_prefix=_prefix(e, d.topic_prefix),
            api_tokens_path=tokens,
            auth_enabled=auth_enabled,
            engine=read_choice(e, "UPSELL_ENGINE", d.engine, ("batch", "faust")),  # type: ignore[arg-type]
            cors_origins=_origins(e),
            **_pools(e, d),
            live_heartbeat_s=read_float(e, "UPSELL_LIVE_HEARTBEAT_S", d.live_heartbeat_s, 0.1, 300),
            live_max_lifetime_s=read_float(
                e, "UPSELL_LIVE_MAX_LIFETIME_S", d.live_max_lifetime_s, 1, 86_400
            ),
            log_format=read_choice(e, "UPSELL_LOG_FORMAT", d.log_format, ("text", "json")),  # type: ignore[arg-type]
            log_level=read_choice(e, "UPSELL_LOG_LEVEL", d.log_level, _LOG_LEVELS, upper=True),
            partitions=read_int(e, "UPSELL_PARTITIONS", d.partitions, lo=1, hi=1024),
            replication_factor=read_int(e, "UPSELL_REPLICATION_FACTOR", 1, lo=1, hi=16),
            min_insync_replicas=_min_insync(e),
            retention_days=read_int(e, "UPSELL_RETENTION_DAYS", d.retention_days, lo=1, hi=36500),
            **counting.batches(e, d),
            shop_cache_entries=read_int(
                e, "UPSELL_SHOP_CACHE_ENTRIES", d.shop_cache_entries, 100, 100_000_000
            ),
            shop_offsets_per_partition=read_int(
                e, "UPSELL_SHOP_OFFSETS_PER_PARTITION", d.shop_offsets_per_partition, 100, 10**8
            ),
            **counting.changelog(e, d),
            consumer_group=e.get("UPSELL_GROUP_ID", d.consumer_group) or d.consumer_group,
            session_timeout_s=read_float(
                e, "UPSELL_SESSION_TIMEOUT_S", d.session_timeout_s, 1, 600
            ),
            heartbeat_interval_s=read_float(
                e, "UPSELL_HEARTBEAT_S", d.heartbeat_interval_s, 0.1, 60
            ),
            worker_id=e.get("UPSELL_WORKER_ID") or d.worker_id,
            data_dir=Path(e.get("UPSELL_DATA_DIR") or d.data_dir),
            collector=CollectorSettings.from_env(e),
        )


def _connections(e: Mapping[str, str], d: Settings) -> dict[str, Any]:
    """Where Kafka and Redis are and how to reach them (stream.settings.kafka and .redis)."""
    redis_url = _redis_url(e, d.redis_url)
    redis_cluster = read_bool(e, "UPSELL_REDIS_CLUSTER", d.redis_cluster)
    return {
        "kafka_bootstrap": _bootstrap(e, d.kafka_bootstrap),
        "kafka_security": KafkaSecurity.from_env(e),
        "redis_url": redis_url,
        "redis_cluster": redis_cluster,
        "redis_options": RedisConnection.from_env(e, redis_url, redis_cluster),
    }


def _pools(e: Mapping[str, str], d: Settings) -> dict[str, Any]:
    """The bounded Redis pools of counting and serving, how long a request waits for one, and
    each token's share of a process; the bounds of one process's queries and streams."""
    return {
        "api_max_range_days": read_int(
            e, "UPSELL_API_MAX_RANGE_DAYS", d.api_max_range_days, 1, 36500
        ),
        "api_max_heavy_queries": read_int(
            e, "UPSELL_API_MAX_HEAVY_QUERIES", d.api_max_heavy_queries, lo=1, hi=10_000
        ),
        "live_max_streams": read_int(e, "UPSELL_LIVE_MAX_STREAMS", d.live_max_streams, 1, 100_000),
        "token_max_requests": read_int(
            e, "UPSELL_TOKEN_MAX_REQUESTS", d.token_max_requests, 1, 100_000
        ),
        "token_max_heavy_queries": read_int(
            e, "UPSELL_TOKEN_MAX_HEAVY_QUERIES", d.token_max_heavy_queries, 1, 10_000
        ),
        "token_max_streams": read_int(
            e, "UPSELL_TOKEN_MAX_STREAMS", d.token_max_streams, 1, 100_000
        ),
        "redis_counting_connections": read_int(
            e, "UPSELL_REDIS_COUNTING_CONNECTIONS", d.redis_counting_connections, 4, 10_000
        ),
        "redis_api_connections": read_int(
            e, "UPSELL_REDIS_API_CONNECTIONS", d.redis_api_connections, 1, 10_000
        ),
        "api_busy_wait_ms": read_int(e, "UPSELL_API_BUSY_WAIT_MS", d.api_busy_wait_ms, 0, 60_000),
    }


def _min_insync(e: Mapping[str, str]) -> int:
    replicas = read_int(e, "UPSELL_REPLICATION_FACTOR", 1, lo=1, hi=16)
    value = read_int(e, "UPSELL_MIN_INSYNC_REPLICAS", 1, lo=1, hi=16)
    if value > replicas:
        raise SettingsError(
            "UPSELL_MIN_INSYNC_REPLICAS",
            f"{value} is more than UPSELL_REPLICATION_FACTOR ({replicas}): no write could succeed",
        )
    return value


def _auth(e: Mapping[str, str]) -> bool:
    raw = e.get("UPSELL_AUTH", "").strip().lower()
    if not raw or raw == "on":
        return True
    if raw == "off":
        return False
    raise SettingsError("UPSELL_AUTH", f"expected 'on' or 'off', got {raw!r}")


def _tokens_path(e: Mapping[str, str], required: bool) -> Path | None:
    raw = e.get("UPSELL_API_TOKENS", "").strip()
    if not raw:
        if required:
            raise SettingsError(
                "UPSELL_API_TOKENS", "a tokens file is required unless UPSELL_AUTH=off"
            )
        return None
    path = Path(raw)
    if not path.is_file():
        raise SettingsError("UPSELL_API_TOKENS", f"no such file: {raw}")
    return path


def _bootstrap(e: Mapping[str, str], default: str) -> str:
    raw = e.get("UPSELL_KAFKA_BOOTSTRAP", "").strip()
    if not raw:
        return default
    servers = [s.strip().removeprefix("kafka://") for s in raw.split(",")]
    for server in servers:
        if not _HOST_PORT.match(server):
            raise SettingsError(
                "UPSELL_KAFKA_BOOTSTRAP", f"expected host:port[,host:port], got {raw!r}"
            )
    return ",".join(servers)


def _redis_url(e: Mapping[str, str], default: str) -> str:
    raw = e.get("UPSELL_REDIS_URL", "").strip()
    if not raw:
        return default
    parsed = urlparse(raw)
    try:
        port_ok = parsed.port is None or 0 < parsed.port < 65536
    except ValueError:
        port_ok = False
    if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
        raise SettingsError("UPSELL_REDIS_URL", f"expected redis://host:port/db, got {raw!r}")
    if not port_ok:
        raise SettingsError("UPSELL_REDIS_URL", f"bad port in {raw!r}")
    return raw


def _prefix(e: Mapping[str, str], default: str) -> str:
    raw = e.get("UPSELL_TOPIC_PREFIX")
    if raw is None:
        return default
    if not re.fullmatch(r"[A-Za-z0-9._\-]{0,100}", raw):
        raise SettingsError("UPSELL_TOPIC_PREFIX", f"only [A-Za-z0-9._-] allowed, got {raw!r}")
    return raw


def _origins(e: Mapping[str, str]) -> tuple[str, ...]:
    raw = e.get("UPSELL_CORS_ORIGINS", "").strip()
    if not raw:
        return ()
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and urlparse(origin).scheme not in ("http", "https"):
            raise SettingsError("UPSELL_CORS_ORIGINS", f"expected http(s) origins, got {origin!r}")
    return origins
