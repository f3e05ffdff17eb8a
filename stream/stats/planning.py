"""How long until an experiment can find the effect it is looking for, at its current traffic.

Never from the observed difference (that swings with noise: the per-view formula it replaces
jumped between 1,900 and 1.4e20 views needed on rates 1e-10 apart). From the minimum detectable
effect the shop set for the group (``mde``, relative: 0.10 = a 10 % better conversion rate) and
the pooled conversion rate of all arms: the subscribers per variation at which the always-valid
interval of a true lift of ``mde`` excludes 0 with 80 % probability,

    smallest n with  h(√(v/n), 2n, α/m) + z₀.₈·√(v/n) <= δ,
    p₀ = pooled rate, p₁ = min(1, p₀(1 + mde)), δ = p₁ − p₀, v = p₀(1 − p₀) + p₁(1 − p₁),

h the two-sided half-width of stream/stats/sequential.py over both arms' 2n subscribers, α/m
the Bonferroni share of the m comparisons (Holm's first step); then the days for the slowest
variation to reach n at its exposures per day so far."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from stream.stats import sequential
from stream.stats.arms import Arm

DEFAULT_MDE = 0.10
Z_POWER80 = 0.841621  # the normal quantile at 0.80
MAX_EXACT = 2**53 - 1  # every integer the API returns fits a JavaScript number
MAX_DAYS = 36_500  # beyond a century at this traffic: "not at this traffic" (None)


@dataclass(frozen=True, slots=True)
class Plan:
    mde: float
    subscribers_needed: int | None  # per variation
    days_needed: int | None  # more days at the traffic so far (0: enough already)


def _detects(n: float, v: float, delta: float, alpha: float) -> bool:
    se = math.sqrt(v / n)
    return sequential.halfwidth(se, 2 * n, alpha) + Z_POWER80 * se <= delta


def subscribers_needed(base_rate: float, mde: float, comparisons: int) -> int | None:
    p0 = base_rate
    p1 = min(1.0, p0 * (1 + mde))
    delta = p1 - p0
    if not 0 < p0 < 1 or not delta > 0 or comparisons < 1:
        return None
    v = p0 * (1 - p0) + p1 * (1 - p1)
    alpha = sequential.ALPHA / comparisons
    # The fixed-sample size is a lower bound (the always-valid half-width is wider than
    # z_(1-α/2)·se at every n): the search starts there, ~15 steps instead of ~45.
    z = NormalDist().inv_cdf(1 - alpha / 2) + Z_POWER80
    lo = max(0, math.floor(z * z * v / (delta * delta)) - 1)  # _detects(lo) is False
    hi = max(1, 2 * lo)
    while not _detects(hi, v, delta, alpha):
        lo, hi = hi, hi * 2
        if hi > MAX_EXACT:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _detects(mid, v, delta, alpha):
            hi = mid
        else:
            lo = mid
    return hi


def plan(arms: Sequence[Arm], mde: float, days_running: int) -> Plan:
    exposed = sum(a.exposed for a in arms)
    converted = sum(min(a.converted, a.exposed) for a in arms)
    if len(arms) < 2 or not exposed:
        return Plan(mde, None, None)
    needed = subscribers_needed(converted / exposed, mde, len(arms) - 1)
    if needed is None:
        return Plan(mde, None, None)
    waits = []
    for a in arms:
        short = max(0, needed - a.exposed)
        if short and (not a.exposed or days_running < 1):
            return Plan(mde, needed, None)
        waits.append(math.ceil(short * days_running / a.exposed) if short else 0)
    days = max(waits)
    return Plan(mde, needed, days if days <= MAX_DAYS else None)
