"""The collector's settings (``upsell-stream collector``), the UPSELL_COLLECTOR_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stream.settings.env import Network, read_float, read_int, read_networks


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """The HTTP collector (``upsell-stream collector``): limits, key cache, dedupe window."""

    host: str = "0.0.0.0"
    port: int = 6067
    key_rate_per_s: float = 2000.0  # events a write key may send per second, sustained
    key_burst: int = 4000
    address_rate_per_s: float = 200.0  # events one client address may send per second
    address_burst: int = 400
    limiter_entries: int = 100_000  # buckets kept per limiter (least recently used evicted)
    key_cache_s: float = 2.0  # how long a key lookup is trusted: the revocation delay
    dedupe_window_s: int = 900  # an accepted event_id is dropped when sent again within this
    produce_timeout_ms: int = 5000  # broker unanswered this long: 503
    trusted_proxies: tuple[Network, ...] = ()  # whose X-Forwarded-For names the client
    demo_key: str = ""  # a public key the /demo-store page embeds (dev --demo only)
    demo_shop: str = ""

    @classmethod
    def from_env(cls, e: Mapping[str, str]) -> CollectorSettings:
        d = cls()
        return cls(
            host=e.get("UPSELL_COLLECTOR_HOST", d.host) or d.host,
            port=read_int(e, "UPSELL_COLLECTOR_PORT", d.port, lo=1, hi=65535),
            key_rate_per_s=read_float(e, "UPSELL_COLLECTOR_KEY_RATE", d.key_rate_per_s, 0.01, 1e7),
            key_burst=read_int(e, "UPSELL_COLLECTOR_KEY_BURST", d.key_burst, lo=1, hi=10_000_000),
            address_rate_per_s=read_float(
                e, "UPSELL_COLLECTOR_ADDRESS_RATE", d.address_rate_per_s, 0.01, 1e7
            ),
            address_burst=read_int(
                e, "UPSELL_COLLECTOR_ADDRESS_BURST", d.address_burst, lo=1, hi=10_000_000
            ),
            limiter_entries=read_int(
                e, "UPSELL_COLLECTOR_LIMITER_ENTRIES", d.limiter_entries, 100, 10_000_000
            ),
            key_cache_s=read_float(e, "UPSELL_COLLECTOR_KEY_CACHE_S", d.key_cache_s, 0, 60),
            dedupe_window_s=read_int(e, "UPSELL_COLLECTOR_DEDUPE_S", d.dedupe_window_s, 1, 604_800),
            produce_timeout_ms=read_int(
                e, "UPSELL_COLLECTOR_PRODUCE_TIMEOUT_MS", d.produce_timeout_ms, 100, 120_000
            ),
            trusted_proxies=read_networks(e, "UPSELL_COLLECTOR_TRUSTED_PROXIES"),
            demo_key=e.get("UPSELL_COLLECTOR_DEMO_KEY", "").strip(),
            demo_shop=e.get("UPSELL_COLLECTOR_DEMO_SHOP", "").strip(),
        )
