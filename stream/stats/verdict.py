"""A group's verdict over its experiment's run: every variation against the control (always
valid, Holm-adjusted), the headline and how long until there is enough data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.stats.arms import Arm
from stream.stats.compare import Comparison, Interval, compare, rate_interval
from stream.stats.planning import Plan, plan
from stream.stats.sequential import ALPHA


@dataclass(frozen=True, slots=True)
class VariationStats:
    arm: Arm
    is_control: bool
    conversion_rate_ci95: Interval | None
    comparison: Comparison | None  # None for the control
    p_value_adjusted: float | None
    significant: bool

    @property
    def variation_id(self) -> str:
        return self.arm.variation_id

    @property
    def lift(self) -> float | None:
        return self.comparison.lift if self.comparison else None

    @property
    def difference(self) -> float:
        c = self.comparison.conversion if self.comparison else None
        return c.estimate if c else 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """``winner``: the significant *improvement* with the smallest adjusted p-value (ties: the
    larger lift, then the id). ``worse``: the significantly worse variations, a warning (picking
    by p-value alone once announced "d converts 50 % worse" over two significant
    improvements). ``guardrail``: variations with significantly more downgrades. ``plan``: the
    subscribers and days still needed for the group's minimum detectable effect."""

    winner: str | None
    lift: float | None
    p_value_adjusted: float | None
    worse: tuple[str, ...]
    guardrail: tuple[str, ...]
    plan: Plan


def choose_control(variation_ids: Sequence[str], requested: str | None) -> str | None:
    """``requested`` when it is one of the ids, else ``control`` when present, else the first
    id in sorted order; ``None`` for no variations."""
    ids = sorted(variation_ids)
    if requested is not None and requested in ids:
        return requested
    if "control" in ids:
        return "control"
    return ids[0] if ids else None


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


def decide(
    arms: Sequence[Arm], control_id: str, *, mde: float, days_running: int
) -> tuple[list[VariationStats], Verdict]:
    control = next(a for a in arms if a.variation_id == control_id)
    comparisons = {a.variation_id: compare(a, control) for a in arms if a is not control}
    raw = [c.conversion.p_value if c.conversion else None for c in comparisons.values()]
    adjusted = dict(zip(comparisons, holm(raw), strict=True))
    out = []
    for arm in arms:
        comparison = comparisons.get(arm.variation_id)
        p_adj = adjusted.get(arm.variation_id)
        out.append(
            VariationStats(
                arm=arm,
                is_control=arm is control,
                conversion_rate_ci95=rate_interval(arm),
                comparison=comparison,
                p_value_adjusted=p_adj,
                significant=bool(
                    comparison and comparison.enough_data and p_adj is not None and p_adj < ALPHA
                ),
            )
        )
    return out, _verdict(out, plan(arms, mde, days_running))


def _verdict(stats: Sequence[VariationStats], needed: Plan) -> Verdict:
    better = [s for s in stats if s.significant and s.difference > 0]
    worse = tuple(s.variation_id for s in stats if s.significant and s.difference < 0)
    guard = tuple(s.variation_id for s in stats if s.comparison and s.comparison.guardrail_tripped)
    if not better:
        return Verdict(None, None, None, worse, guard, needed)
    best = min(better, key=lambda s: (s.p_value_adjusted or 0.0, -(s.lift or 0.0), s.variation_id))
    return Verdict(best.variation_id, best.lift, best.p_value_adjusted, worse, guard, needed)
