"""Simulated experiments for the decision statistics (README "Statistics", docs/contract.md §4.1).

Each run is one group with a control and one variation, watched once a day for ``days`` days.
Every day each arm exposes Poisson(``per_day``) new subscribers; each converts with its arm's
probability; each sees 1 + ⌊3·X⌋ banners, X from numpy's Pareto (Lomax) of shape 1.2, a heavy
tail (mean 16 views, a few subscribers with thousands). At every look the cumulative counts go
through the API's own code (stream.stats.decision.decide) and, for contrast, through the
per-view pooled z-test the API used before (views as trials).

    python -m bench.ab_simulation            # the long run: 10,000 A/A and 2,000 A/B runs
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from stream.stats.arms import Arm
from stream.stats.verdict import decide


@dataclass(frozen=True, slots=True)
class Outcome:
    runs: int
    ever_significant: float  # share of runs significant (either direction) at some look
    ever_better: float  # share of runs with the variation announced as the winner at some look
    ever_worse: float  # share of runs with the variation announced significantly worse
    median_day_found: float | None  # median first day the winner was announced, among found
    per_view_ever_significant: float  # the old per-view z-test, same runs and looks
    fixed_ever_significant: float  # a fixed-sample z-test on subscribers, same runs and looks

    def margin(self) -> float:
        """Two standard errors of ``ever_significant`` at 5 %: the simulation's own error."""
        return 2 * math.sqrt(0.05 * 0.95 / self.runs)


def _z_significant(views: tuple[float, float], conv: tuple[float, float]) -> bool:
    """The pooled two-proportion z-test at 5 %, two-sided (what the API used, on views)."""
    (nv, nc), (xv, xc) = views, conv
    pooled = (xv + xc) / (nv + nc)
    se = math.sqrt(pooled * (1 - pooled) * (1 / nv + 1 / nc))
    return bool(se > 0 and abs(xv / nv - xc / nc) / se > 1.959964)


def simulate(
    runs: int,
    *,
    rates: tuple[float, float] = (0.10, 0.10),
    per_day: float = 150.0,
    days: int = 30,
    seed: int = 1,
) -> Outcome:
    """``rates`` = (control, variation) conversion probabilities per exposed subscriber."""
    rng = np.random.default_rng(seed)
    exposed = rng.poisson(per_day, size=(runs, days, 2))
    converted = rng.binomial(exposed, np.array(rates))
    flat = exposed.ravel()
    extra = np.floor(3 * rng.pareto(1.2, size=int(flat.sum())))
    owner = np.repeat(np.arange(flat.size), flat)
    views = (flat + np.bincount(owner, weights=extra, minlength=flat.size)).reshape(exposed.shape)
    cum_n, cum_x, cum_v = exposed.cumsum(axis=1), converted.cumsum(axis=1), views.cumsum(axis=1)
    significant = better = worse = per_view = fixed = 0
    found_days: list[int] = []
    for r in range(runs):
        hit = won = lost = old = naive = False
        for d in range(days):
            n, x, v = cum_n[r, d], cum_x[r, d], cum_v[r, d]
            arms = [Arm("control", int(n[0]), int(x[0])), Arm("v", int(n[1]), int(x[1]))]
            stats, verdict = decide(arms, "control", mde=0.1, days_running=d + 1)
            hit = hit or any(s.significant for s in stats)
            lost = lost or bool(verdict.worse)
            if verdict.winner and not won:
                won = True
                found_days.append(d + 1)
            old = old or _z_significant((v[1], v[0]), (x[1], x[0]))
            naive = naive or _z_significant((n[1], n[0]), (x[1], x[0]))
        significant += hit
        better += won
        worse += lost
        per_view += old
        fixed += naive
    median = float(np.median(found_days)) if found_days else None
    return Outcome(
        runs, significant / runs, better / runs, worse / runs, median, per_view / runs, fixed / runs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-runs", type=int, default=10_000)
    parser.add_argument("--ab-runs", type=int, default=2_000)
    args = parser.parse_args()
    aa = simulate(args.aa_runs, seed=7)
    print(
        f"A/A {aa.runs} runs, 30 daily looks, ~150 subscribers/arm/day: ever significant "
        f"{aa.ever_significant:.2%} (± {aa.margin():.2%}); same runs and looks, fixed-sample "
        f"z-test on subscribers {aa.fixed_ever_significant:.1%}, on views "
        f"{aa.per_view_ever_significant:.1%}"
    )
    for lift in (0.10, 0.20, 0.30):
        ab = simulate(args.ab_runs, rates=(0.10, 0.10 * (1 + lift)), seed=11)
        print(
            f"A/B +{lift:.0%} ({ab.runs} runs): found within 30 days {ab.ever_better:.1%}, "
            f"median day {ab.median_day_found}, announced worse {ab.ever_worse:.2%}"
        )


if __name__ == "__main__":
    main()
