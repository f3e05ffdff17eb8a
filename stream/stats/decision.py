"""A group's decision: stats per variation against the control, Holm-adjusted, and a verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.stats.proportions import (
    ALPHA,
    Arm,
    Comparison,
    compare,
    holm,
    rate_interval,
    revenue_per_view,
)


@dataclass(frozen=True, slots=True)
class VariationStats:
    variation_id: str
    is_control: bool
    views: int
    conversion_rate: float | None
    conversion_rate_ci95: tuple[float, float] | None
    click_through_rate: float | None
    revenue_per_view: dict[str, float]
    comparison: Comparison | None  # None for the control
    p_value_adjusted: float | None
    significant: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """``winner`` set when a comparison is a significant improvement (the one with the smallest
    adjusted p-value, ties to the larger lift, then the id); ``worse`` lists the significantly
    worse variations (a warning, never a winner: picking by p-value alone once announced
    "d converts 50 % worse" over two significant improvements). Without a winner,
    ``more_views_needed`` is the smallest N over the comparisons (None when none gives one)."""

    winner: str | None
    lift: float | None
    p_value_adjusted: float | None
    more_views_needed: int | None
    worse: tuple[str, ...] = ()


def decide(arms: Sequence[Arm], control_id: str) -> tuple[list[VariationStats], Verdict]:
    control = next(a for a in arms if a.variation_id == control_id)
    others = [a for a in arms if a.variation_id != control_id]
    comparisons = {a.variation_id: compare(a, control) for a in others}
    adjusted = dict(
        zip(
            comparisons,
            holm([c.p_value for c in comparisons.values()]),
            strict=True,
        )
    )
    out = []
    for arm in arms:
        comparison = comparisons.get(arm.variation_id)
        p_adj = adjusted.get(arm.variation_id)
        out.append(
            VariationStats(
                variation_id=arm.variation_id,
                is_control=arm.variation_id == control_id,
                views=arm.views,
                conversion_rate=arm.rate,
                conversion_rate_ci95=rate_interval(arm),
                click_through_rate=arm.clicks / arm.views if arm.views else None,
                revenue_per_view=revenue_per_view(arm),
                comparison=comparison,
                p_value_adjusted=p_adj,
                significant=bool(
                    comparison and comparison.enough_data and p_adj is not None and p_adj < ALPHA
                ),
            )
        )
    return out, _verdict(out)


def _verdict(stats: Sequence[VariationStats]) -> Verdict:
    better = [s for s in stats if s.significant and _difference(s) > 0]
    worse = tuple(s.variation_id for s in stats if s.significant and _difference(s) < 0)
    if better:
        best = min(
            better,
            key=lambda s: (s.p_value_adjusted or 0.0, -(_lift(s) or 0.0), s.variation_id),
        )
        return Verdict(best.variation_id, _lift(best), best.p_value_adjusted, None, worse)
    needed = [
        s.comparison.more_views_needed
        for s in stats
        if s.comparison is not None and s.comparison.more_views_needed is not None
    ]
    return Verdict(None, None, None, min(needed) if needed else None, worse)


def _difference(s: VariationStats) -> float:
    """The centre of the variation's interval for p_v - p_c (0 without one)."""
    ci = s.comparison.diff_ci95 if s.comparison else None
    return 0.0 if ci is None else (ci[0] + ci[1]) / 2


def _lift(s: VariationStats) -> float | None:
    return s.comparison.lift if s.comparison else None
