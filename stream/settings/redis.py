"""How the service reaches Redis (the UPSELL_REDIS_* variables): one Redis by URL, a Redis
Cluster, or the master a set of Sentinels names; TLS with a private CA; the password from a file;
and what to do when Redis is set up to lose counts. :func:`stream.state.connection.open_redis`
turns it into a redis-py client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stream.settings.env import SettingsError, read_choice
from stream.settings.kafka import read_secret_file

ConfigCheck = Literal["refuse", "warn", "off"]


@dataclass(frozen=True, slots=True)
class RedisConnection:
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool = False
    ca_file: Path | None = None  # rediss:// (or Sentinel with TLS) trusting this CA
    password: str = field(default="", repr=False)  # UPSELL_REDIS_PASSWORD_FILE; wins over the URL's
    sentinels: tuple[tuple[str, int], ...] = ()  # host:port of each Sentinel
    sentinel_master: str = ""  # the name the Sentinels monitor
    # maxmemory-policy other than noeviction (Redis evicts counters) or no persistence (a restart
    # empties it): refuse to start, or start with a warning, or do not look.
    config_check: ConfigCheck = "refuse"

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://") or self.ca_file is not None

    @classmethod
    def from_env(cls, e: Mapping[str, str], url: str, cluster: bool) -> RedisConnection:
        d = cls()
        sentinels = _sentinels(e)
        master = e.get("UPSELL_REDIS_SENTINEL_MASTER", "").strip()
        if sentinels and not master:
            raise SettingsError(
                "UPSELL_REDIS_SENTINEL_MASTER", "UPSELL_REDIS_SENTINELS needs the master's name"
            )
        if sentinels and cluster:
            raise SettingsError(
                "UPSELL_REDIS_SENTINELS", "Sentinel and UPSELL_REDIS_CLUSTER=on exclude each other"
            )
        ca_raw = e.get("UPSELL_REDIS_CA_FILE", "").strip()
        if ca_raw and not Path(ca_raw).is_file():
            raise SettingsError("UPSELL_REDIS_CA_FILE", f"no such file: {ca_raw}")
        return cls(
            url=url,
            cluster=cluster,
            ca_file=Path(ca_raw) if ca_raw else None,
            password=read_secret_file(e, "UPSELL_REDIS_PASSWORD_FILE", required=False),
            sentinels=sentinels,
            sentinel_master=master,
            config_check=read_choice(  # type: ignore[arg-type]
                e, "UPSELL_REDIS_CONFIG_CHECK", d.config_check, ("refuse", "warn", "off")
            ),
        )


def _sentinels(e: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    raw = e.get("UPSELL_REDIS_SENTINELS", "").strip()
    found = []
    for entry in (s.strip() for s in raw.split(",") if s.strip()):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(
                "UPSELL_REDIS_SENTINELS", f"expected host:port[,host:port], got {entry!r}"
            )
        found.append((host.strip("[]"), int(port)))
    return tuple(found)
