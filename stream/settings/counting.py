"""The settings of counting: how a worker fetches and applies records, and its state changelog
(README, "Configuration"). Read by ``Settings.from_env``, with its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stream.settings.env import read_bool, read_int

if TYPE_CHECKING:
    from stream.settings import Settings


def batches(e: Mapping[str, str], d: Settings) -> dict[str, Any]:
    """How records are fetched and applied (README, "Configuration")."""
    return {
        "batch_max_events": read_int(e, "UPSELL_BATCH_MAX_EVENTS", d.batch_max_events, 1, 10**6),
        "batch_linger_ms": read_int(e, "UPSELL_BATCH_LINGER_MS", d.batch_linger_ms, 0, 60_000),
        "fetch_max_wait_ms": read_int(e, "UPSELL_FETCH_MAX_WAIT_MS", d.fetch_max_wait_ms, 1, 10**4),
        "apply_shops_per_call": read_int(
            e, "UPSELL_APPLY_SHOPS_PER_CALL", d.apply_shops_per_call, 1, 10**6
        ),
        "apply_max_events": read_int(e, "UPSELL_APPLY_MAX_EVENTS", d.apply_max_events, 100, 10**6),
        "apply_calls_in_flight": read_int(
            e, "UPSELL_APPLY_CALLS_IN_FLIGHT", d.apply_calls_in_flight, 0, 1_000
        ),
    }


def changelog(e: Mapping[str, str], d: Settings) -> dict[str, Any]:
    return {
        "changelog": read_bool(e, "UPSELL_CHANGELOG", d.changelog),
        "changelog_flush_ms": read_int(
            e, "UPSELL_CHANGELOG_FLUSH_MS", d.changelog_flush_ms, 10, 600_000
        ),
        "changelog_idempotent": read_bool(e, "UPSELL_CHANGELOG_IDEMPOTENT", d.changelog_idempotent),
    }
