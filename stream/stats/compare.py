"""One variation against the control, always valid (stream/stats/sequential.py): the
difference of conversion rates, of revenue per exposed subscriber (Welch's standard error) per
currency, and the one-sided downgrade guardrail. Every figure is ``None`` when its inputs cannot
give it (an empty arm, a zero standard error)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.stats import sequential
from stream.stats.arms import Arm

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Difference:
    estimate: float
    ci95: Interval | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    conversion: Difference | None
    lift: float | None
    enough_data: bool
    revenue: dict[str, Difference]  # per currency
    downgrades: Difference | None  # ci95 = (always-valid lower bound, +inf as None)
    guardrail_tripped: bool


def rate_interval(arm: Arm) -> Interval | None:
    """Always-valid 95 % interval of one arm's conversion rate, clipped to [0, 1]."""
    p = arm.rate
    if p is None:
        return None
    h = sequential.halfwidth(math.sqrt(p * (1 - p) / arm.exposed), arm.exposed)
    return (max(0.0, p - h), min(1.0, p + h))


def difference(estimate: float, se: float, n: int) -> Difference:
    if not se > 0:
        return Difference(estimate, None, None)
    h = sequential.halfwidth(se, n)
    return Difference(estimate, (estimate - h, estimate + h), sequential.p_value(estimate, se, n))


def _bernoulli_se(pv: float, nv: int, pc: float, nc: int) -> float:
    return math.sqrt(pv * (1 - pv) / nv + pc * (1 - pc) / nc)


def conversion(arm: Arm, control: Arm) -> Difference | None:
    pv, pc = arm.rate, control.rate
    if pv is None or pc is None:
        return None
    n = arm.exposed + control.exposed
    return difference(pv - pc, _bernoulli_se(pv, arm.exposed, pc, control.exposed), n)


def revenue(arm: Arm, control: Arm, currency: str) -> Difference | None:
    """Revenue per exposed subscriber, variation minus control: Welch's standard error
    √(s_v²/n_v + s_c²/n_c) from the sums and sums of squares, the always-valid half-width."""
    mv, mc = arm.mean_revenue(currency), control.mean_revenue(currency)
    sv, sc = arm.revenue_variance(currency), control.revenue_variance(currency)
    if mv is None or mc is None or sv is None or sc is None:
        return None
    se = math.sqrt(sv / arm.exposed + sc / control.exposed)
    return difference(mv - mc, se, arm.exposed + control.exposed)


def downgrades(arm: Arm, control: Arm) -> Difference | None:
    """Downgraded subscribers per exposed subscriber, variation minus control, with the
    one-sided always-valid lower bound as ``ci95[0]`` (the upper end is not bounded: +inf)."""
    dv, dc = arm.downgrade_rate, control.downgrade_rate
    if dv is None or dc is None:
        return None
    se = _bernoulli_se(dv, arm.exposed, dc, control.exposed)
    if not se > 0:
        return Difference(dv - dc, None, None)
    margin = sequential.one_sided_halfwidth(se, arm.exposed + control.exposed)
    return Difference(dv - dc, (dv - dc - margin, math.inf), None)


def compare(arm: Arm, control: Arm) -> Comparison:
    conv = conversion(arm, control)
    pv, pc = arm.rate, control.rate
    currencies = sorted(set(arm.revenue) | set(control.revenue))
    money = {c: d for c in currencies if (d := revenue(arm, control, c)) is not None}
    down = downgrades(arm, control)
    return Comparison(
        conversion=conv,
        lift=pv / pc - 1 if pv is not None and pc else None,
        enough_data=arm.enough and control.enough and conv is not None,
        revenue=money,
        downgrades=down,
        guardrail_tripped=bool(down and down.ci95 and down.ci95[0] > 0),
    )
