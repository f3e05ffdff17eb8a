"""A variation's exposed subscribers over an experiment's run: the sufficient statistics the
decision needs (docs/contract.md §4.1), as the state keeps them per exposure day and the API
sums them. Pure data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MIN_SUBSCRIBERS = 100  # exposed subscribers per arm before a comparison may be significant
MIN_CONVERTED = 5  # converted subscribers per arm, likewise


@dataclass(frozen=True, slots=True)
class Revenue:
    """One currency's revenue of the converted subscribers: Σ r_i and Σ r_i² over the
    subscribers (r_i = a subscriber's revenue since exposure, 0 for the others)."""

    total: float = 0.0
    squares: float = 0.0


@dataclass(frozen=True, slots=True)
class Arm:
    variation_id: str
    exposed: int  # subscribers whose first view in the group was of this variation
    converted: int  # of them, those with an upgrade attributed to the group
    downgraded: int = 0  # of them, those with a downgrade attributed to the group
    revenue: Mapping[str, Revenue] = field(default_factory=dict)
    crossed: int = 0  # of them, those who saw another variation of the group later

    @property
    def rate(self) -> float | None:
        """Converted / exposed: ``None`` for no exposure (or counters that are no proportion)."""
        return _proportion(self.converted, self.exposed)

    @property
    def downgrade_rate(self) -> float | None:
        return _proportion(self.downgraded, self.exposed)

    @property
    def enough(self) -> bool:
        return self.exposed >= MIN_SUBSCRIBERS and self.converted >= MIN_CONVERTED

    def mean_revenue(self, currency: str) -> float | None:
        if not self.exposed:
            return None
        return self.revenue.get(currency, Revenue()).total / self.exposed

    def revenue_variance(self, currency: str) -> float | None:
        """Sample variance of the revenue per exposed subscriber (n - 1 in the denominator)."""
        n = self.exposed
        if n < 2:
            return None
        r = self.revenue.get(currency, Revenue())
        return max(0.0, (r.squares - r.total * r.total / n) / (n - 1))


def _proportion(x: int, n: int) -> float | None:
    return x / n if n > 0 and 0 <= x <= n else None
