"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith, Arnold, Wu, Howard,
Ramdas and Ruf, "Time-uniform central limit theory and asymptotic confidence sequences",
arXiv:2103.06476v7), as GrowthBook's gbstats uses them for its sequential testing.

An estimate with standard error ``se`` from ``n`` units (a comparison's n is both arms' units
together) has the half-width (eq. 9, the Gaussian mixture boundary)

    h = se·√n · √( 2(nρ² + 1) / (n²ρ²) · ln(√(nρ² + 1) / α) )

and the always-valid p-value is 1/E with the mixture e-value (eq. 155)

    E = exp( ρ²·n·z² / (2(nρ² + 1)) ) / √(nρ² + 1),   z = estimate / se

so ``p < α`` exactly when the interval excludes 0. ρ is tuned so the boundary is tightest at
``n = N*`` units (eq. 161): ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*; N* = 5,000 is gbstats'
default ``sequential_tuning_parameter``. The one-sided boundary (eq. 134, with 2α in ρ) serves
the downgrade guardrail.

Why: a fixed-sample z-test looked at once a day for 30 days of an A/A test (no difference) was
"significant" at some look in 27 % of runs (docs/contract.md §4.1, README); these intervals
hold at every look at once, so one can watch the dashboard all day.
"""

from __future__ import annotations

import math
from functools import lru_cache

ALPHA = 0.05
TUNING_N = 5000.0  # N*: the units at which the boundary is tightest (gbstats' default)


@lru_cache(maxsize=64)
def rho_squared(alpha: float = ALPHA, tuning_n: float = TUNING_N, two_sided: bool = True) -> float:
    a = alpha if two_sided else 2 * alpha
    return (-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning_n


def halfwidth(se: float, n: float, alpha: float = ALPHA, tuning_n: float = TUNING_N) -> float:
    """Two-sided half-width of the confidence sequence at ``n`` units (n > 0, se >= 0)."""
    r2 = rho_squared(alpha, tuning_n)
    nr = n * r2 + 1
    return se * math.sqrt(n) * math.sqrt(2 * nr / (n * n * r2) * math.log(math.sqrt(nr) / alpha))


def one_sided_halfwidth(
    se: float, n: float, alpha: float = ALPHA, tuning_n: float = TUNING_N
) -> float:
    """One-sided margin: the estimate minus it is an always-valid lower bound (upper: plus)."""
    r2 = rho_squared(alpha, tuning_n, two_sided=False)
    nr = n * r2 + 1
    log_term = math.log(1 + math.sqrt(nr) / (2 * alpha))
    return se * math.sqrt(n) * math.sqrt(2 * nr / (n * n * r2) * log_term)


def p_value(
    estimate: float, se: float, n: float, alpha: float = ALPHA, tuning_n: float = TUNING_N
) -> float:
    """Always-valid two-sided p-value of ``estimate = 0`` (se > 0, n > 0). Computed in logs:
    the e-value of a large effect overflows a float (exp(1e6)). ρ depends on α, so the p-value
    is that of the boundary tuned for ``alpha`` (as in gbstats)."""
    r2 = rho_squared(alpha, tuning_n)
    nr = n * r2 + 1
    t2 = (estimate / se) ** 2
    log_e = r2 * t2 * n / (2 * nr) - 0.5 * math.log(nr)
    return 1.0 if log_e <= 0 else math.exp(-log_e)
