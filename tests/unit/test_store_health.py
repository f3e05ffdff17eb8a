"""upsell_redis_up follows every Redis call: one failed call (a settings refresh, a sweep) is
undone by the next call that answers, whatever path makes it."""

from __future__ import annotations

from stream.state.health import StoreHealth
from stream.state.store import StoreUnavailable
from stream.telemetry import Telemetry


def up(telemetry: Telemetry) -> float | None:
    return telemetry.registry.get_sample_value("upsell_redis_up")


def test_one_failed_refresh_is_undone_by_the_next_answer() -> None:
    telemetry = Telemetry()
    health = StoreHealth(telemetry)
    error = StoreUnavailable("redis unavailable: connection reset")
    health.observe(error)  # the store reports the failed call
    health.failed("settings", error)  # the caller counts it under its operation
    assert up(telemetry) == 0
    health.observe(None)  # any later call that answers: an apply, a read, the 5 s ping
    assert up(telemetry) == 1
    assert (
        telemetry.registry.get_sample_value("upsell_redis_errors_total", {"operation": "settings"})
        == 1
    )
    assert telemetry.registry.get_sample_value("upsell_redis_reconnects_total") == 1
