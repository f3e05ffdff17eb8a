"""The demo generator: deterministic, realistic proportions, and every record means what it says."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from schemas.decode import decode
from schemas.models import Kind, Rejected, ShopSettings
from stream.dates.clock import FixedClock
from stream.devtools.demo import DemoGenerator

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
KINDS = {
    "view": Kind.VIEW,
    "click": Kind.CLICK,
    "upgrade": Kind.UPGRADE,
    "downgrade": Kind.DOWNGRADE,
    "shop": Kind.SHOP,
    "subscribers": Kind.SUBSCRIBERS,
}


def generate(seed: int, n: int) -> list[object]:
    gen = DemoGenerator(seed=seed, clock=FixedClock(NOW))
    return [*gen.settings(), *gen.subscriber_snapshots(), *gen.events(n)]


def test_same_seed_same_bytes() -> None:
    assert generate(3, 2000) == generate(3, 2000)
    assert generate(3, 2000) != generate(4, 2000)


def test_proportions_and_validity() -> None:
    gen = DemoGenerator(seed=9, clock=FixedClock(NOW))
    records = list(gen.events(50_000))
    kinds = Counter(r.topic_kind for r in records if r.expect == "count")
    assert kinds["view"] > 5 * kinds["click"] > 5 * kinds["upgrade"] > 0
    assert kinds["downgrade"] > 0
    expects = Counter(r.expect for r in records)
    assert expects["duplicate"] > 0 and expects["dead_letter"] > 0
    currencies = set()
    for r in [*gen.settings(), *gen.subscriber_snapshots(), *records]:
        result = decode(KINDS[r.topic_kind], r.key, r.value, NOW)
        assert isinstance(result, Rejected) == (r.expect == "dead_letter"), r
        currencies.add(getattr(result, "currency", None))
        occurred = getattr(result, "occurred_at", None)
        assert occurred is None or occurred <= NOW
    assert {"USD", "EUR"} <= currencies
    timezones = {
        s.timezone
        for s in (decode(Kind.SHOP, r.key, r.value, NOW) for r in gen.settings())
        if isinstance(s, ShopSettings)
    }
    assert {"America/New_York", "Asia/Kolkata", "UTC"} <= timezones
