"""Comparing one variation's conversion rate with the control's (docs/contract.md §4.1).

An arm is a variation's counts over the period: n = banner views, x = conversions,
p = x / n. Every figure is ``None`` when its inputs cannot give it (an empty arm, a zero rate
in a denominator, a zero standard error)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stream.stats.distributions import two_sided_p

Z95 = 1.959964  # two-sided 95 %: the normal quantile at 0.975
Z_POWER80 = 0.841621  # the normal quantile at 0.80 (power of the sample-size formula)
ALPHA = 0.05
MIN_VIEWS = 100
MIN_CONVERSIONS = 5
MAX_EXACT = 2**53 - 1  # the largest integer a JavaScript number holds exactly


@dataclass(frozen=True, slots=True)
class Arm:
    variation_id: str
    views: int
    clicks: int
    conversions: int
    revenue_minor: Mapping[str, int]

    @property
    def rate(self) -> float | None:
        return self.conversions / self.views if self.views else None

    @property
    def proportion(self) -> float | None:
        """The rate when it is a proportion: ``None`` for an empty arm or more conversions than
        views (conversions and views are counted on their own days, so a period that starts
        between a view and its upgrade can hold more; p(1 - p) was then negative and
        math.sqrt answered the API's 500)."""
        return self.conversions / self.views if 0 <= self.conversions <= self.views else None

    @property
    def enough(self) -> bool:
        return self.views >= MIN_VIEWS and self.conversions >= MIN_CONVERSIONS


@dataclass(frozen=True, slots=True)
class Comparison:
    lift: float | None
    diff_ci95: tuple[float, float] | None
    p_value: float | None
    enough_data: bool
    more_views_needed: int | None


def choose_control(variation_ids: Sequence[str], requested: str | None) -> str | None:
    """``requested`` when it is one of the ids, else ``control`` when present, else the first
    id in sorted order; ``None`` for no variations."""
    ids = sorted(variation_ids)
    if requested is not None and requested in ids:
        return requested
    if "control" in ids:
        return "control"
    return ids[0] if ids else None


def wald_interval(arm: Arm, control: Arm) -> tuple[float, float] | None:
    """95 % Wald interval of p_v - p_c with unpooled variances."""
    pv, pc = arm.proportion, control.proportion
    if pv is None or pc is None:
        return None
    se = math.sqrt(pv * (1 - pv) / arm.views + pc * (1 - pc) / control.views)
    diff = pv - pc
    return (diff - Z95 * se, diff + Z95 * se)


def rate_interval(arm: Arm) -> tuple[float, float] | None:
    """95 % Wald interval of one arm's rate, clipped to [0, 1] (the dashboard's bars)."""
    p = arm.proportion
    if p is None:
        return None
    half = Z95 * math.sqrt(p * (1 - p) / arm.views)
    return (max(0.0, p - half), min(1.0, p + half))


def pooled_p_value(arm: Arm, control: Arm) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test."""
    if arm.proportion is None or control.proportion is None:
        return None
    pooled = (arm.conversions + control.conversions) / (arm.views + control.views)
    se = math.sqrt(pooled * (1 - pooled) * (1 / arm.views + 1 / control.views))
    if se == 0:
        return None
    z = (arm.conversions / arm.views - control.conversions / control.views) / se
    return two_sided_p(z)


def views_needed(arm: Arm, control: Arm) -> int | None:
    """Views per arm for an 80 %-power, two-sided 5 % test of the observed rates:
    ceil((Z95 + Z_POWER80)² · (p_v(1-p_v) + p_c(1-p_c)) / (p_v - p_c)²), at least MIN_VIEWS.
    ``None`` when either rate is unknown or the rates are equal, and when the figure passes
    MAX_EXACT (rates of 10 % and 10 % + 1e-10 asked for 1.4e20 views: orjson refused the
    integer and the API answered 500)."""
    pv, pc = arm.proportion, control.proportion
    if pv is None or pc is None or pv == pc:
        return None
    n = (Z95 + Z_POWER80) ** 2 * (pv * (1 - pv) + pc * (1 - pc)) / (pv - pc) ** 2
    if not n <= MAX_EXACT:
        return None
    return max(MIN_VIEWS, math.ceil(n))


def compare(arm: Arm, control: Arm) -> Comparison:
    pv, pc = arm.proportion, control.proportion
    needed = views_needed(arm, control)
    return Comparison(
        lift=pv / pc - 1 if pv is not None and pc else None,
        diff_ci95=wald_interval(arm, control),
        p_value=pooled_p_value(arm, control),
        enough_data=arm.enough and control.enough and pv is not None and pc is not None,
        more_views_needed=(
            max(0, needed - min(arm.views, control.views)) if needed is not None else None
        ),
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in the input order. ``None`` entries stay ``None`` and
    do not count in m (the number of comparisons)."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def revenue_per_view(arm: Arm) -> dict[str, float]:
    """Revenue per banner view in minor units, per currency ({} without views)."""
    if not arm.views:
        return {}
    return {cur: amount / arm.views for cur, amount in sorted(arm.revenue_minor.items())}
