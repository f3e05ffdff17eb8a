"""The always-valid statistics on exposed subscribers (stream/stats/), against independent
figures: GrowthBook's published test results for its sequential intervals, scipy's Welch t-test,
statsmodels' Wald interval of two proportions and Holm, and brute force for the planning. Random
cases with hypothesis, and the edges: zero exposures, zero conversions, every subscriber
converted, one variation, 20 variations, huge counts, ties."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp
from statsmodels.stats.proportion import confint_proportions_2indep

from stream.stats import sequential
from stream.stats.arms import Arm, Revenue
from stream.stats.compare import compare, conversion, downgrades, rate_interval, revenue
from stream.stats.planning import MAX_EXACT, plan, subscribers_needed

Z95 = sp.norm.ppf(0.975)


def test_halfwidths_match_growthbooks_published_results() -> None:
    # gbstats' own tests (packages/stats/tests/frequentist/test_tests.py,
    # TestSequentialTTest and TestSequentialOneSidedGreaterTTest): estimate, standard error,
    # units n = 3000 + 3461, and the interval their code gives, to 5 decimals.
    n = 3000 + 3461
    assert sequential.halfwidth(0.33341, n, tuning_n=1000) == pytest.approx(
        1.56516 - 0.50336, abs=2e-5
    )
    assert sequential.halfwidth(0.03386, n) == pytest.approx(0.60675 - 0.50386, abs=2e-5)
    se, estimate, lower = 0.12983081254184736, 0.23437666666666668, -0.12656844172804982
    assert sequential.one_sided_halfwidth(se, n) == pytest.approx(estimate - lower, rel=1e-12)


def test_rho_is_tightest_at_the_tuning_n() -> None:
    # Eq. 161 picks rho so the boundary is (close to) tightest at N*: in standard errors, the
    # half-width is 3.04 at n = 5,000 (1.55 times a fixed-sample 1.96), 3.86 at 500 and 3.34
    # at 100,000.
    def multiplier(n: int) -> float:
        return sequential.halfwidth(1 / math.sqrt(n), n) * math.sqrt(n)

    assert multiplier(5000) == pytest.approx(3.035, abs=1e-3)
    assert multiplier(5000) < multiplier(500) and multiplier(5000) < multiplier(100_000)


@given(
    estimate=st.floats(min_value=-5, max_value=5, allow_nan=False),
    se=st.floats(min_value=1e-4, max_value=3),
    n=st.integers(min_value=2, max_value=10**9),
)
@settings(max_examples=300, deadline=None)
def test_p_value_below_alpha_exactly_when_the_interval_excludes_zero(
    estimate: float, se: float, n: int
) -> None:
    h = sequential.halfwidth(se, n)
    p = sequential.p_value(estimate, se, n)
    assert 0 <= p <= 1  # 0.0 when the e-value passes 1e308
    if abs(abs(estimate) - h) > 1e-9 * max(1.0, h):
        assert (p < sequential.ALPHA) == (abs(estimate) > h)


def test_always_valid_is_wider_than_the_fixed_sample_interval() -> None:
    for n in (100, 5000, 10**6, 10**12):
        assert sequential.halfwidth(1.0, n) > Z95 * 1.0


subscribers = st.integers(min_value=2, max_value=10**7)


def proportion_arm(name: str, n: int, share: float) -> Arm:
    return Arm(name, n, min(n, round(n * share)))


@given(
    nv=subscribers,
    nc=subscribers,
    pv=st.floats(min_value=0, max_value=1),
    pc=st.floats(min_value=0, max_value=1),
)
@settings(max_examples=200, deadline=None)
def test_conversion_difference_uses_the_unpooled_wald_standard_error(
    nv: int, nc: int, pv: float, pc: float
) -> None:
    v, c = proportion_arm("v", nv, pv), proportion_arm("c", nc, pc)
    got = conversion(v, c)
    assert got is not None
    low, high = confint_proportions_2indep(
        v.converted, nv, c.converted, nc, method="wald", compare="diff"
    )
    se = (high - low) / (2 * Z95)  # statsmodels' Wald standard error, independent of ours
    assert got.estimate == pytest.approx(v.converted / nv - c.converted / nc, abs=1e-12)
    if se < 1e-12:
        assert got.ci95 is None and got.p_value is None
        return
    assert got.ci95 is not None and got.p_value is not None
    width = sequential.halfwidth(se, nv + nc)
    assert got.ci95[0] == pytest.approx(got.estimate - width, rel=1e-6, abs=1e-9)
    assert got.ci95[1] == pytest.approx(got.estimate + width, rel=1e-6, abs=1e-9)


def revenue_arm(name: str, amounts: list[int], exposed: int) -> Arm:
    return Arm(
        name,
        exposed,
        sum(1 for a in amounts if a),
        revenue={"USD": Revenue(float(sum(amounts)), float(sum(a * a for a in amounts)))},
    )


@pytest.mark.parametrize("seed", range(30))
def test_revenue_uses_welchs_standard_error(seed: int) -> None:
    rng = random.Random(seed)
    sizes = rng.randint(3, 400), rng.randint(3, 400)
    data = [
        [rng.choice([0, 0, 0, rng.randint(100, 90_000)]) for _ in range(size)] for size in sizes
    ]
    for d in data:
        d[0] = 1500  # no arm without variance
    v, c = revenue_arm("v", data[0], sizes[0]), revenue_arm("c", data[1], sizes[1])
    got = revenue(v, c, "USD")
    t = sp.ttest_ind(data[0], data[1], equal_var=False)
    diff = sum(data[0]) / sizes[0] - sum(data[1]) / sizes[1]
    assert got is not None and got.ci95 is not None
    assert got.estimate == pytest.approx(diff, rel=1e-9, abs=1e-9)
    se = abs(diff / t.statistic)  # Welch's standard error, from scipy
    width = sequential.halfwidth(se, sum(sizes))
    assert got.ci95[1] - got.estimate == pytest.approx(width, rel=1e-6)


def test_downgrade_guardrail_is_one_sided() -> None:
    control = Arm("c", 4000, 400, downgraded=80)
    worse = Arm("v", 4000, 400, downgraded=160)
    same = Arm("v", 4000, 400, downgraded=85)
    d = downgrades(worse, control)
    assert d is not None and d.ci95 is not None and d.ci95[0] > 0 and d.ci95[1] == math.inf
    assert compare(worse, control).guardrail_tripped
    assert not compare(same, control).guardrail_tripped
    assert not compare(control, worse).guardrail_tripped  # fewer downgrades never trip it


# -- the edges -----------------------------------------------------------------------------


def test_zero_exposures() -> None:
    empty, c = Arm("v", 0, 0), Arm("c", 1000, 100)
    got = compare(empty, c)
    assert got.conversion is None and got.lift is None and not got.enough_data
    assert rate_interval(empty) is None and got.revenue == {} and got.downgrades is None
    assert plan([empty, Arm("c", 0, 0)], 0.1, 3).subscribers_needed is None


def test_zero_conversions_and_every_subscriber_converted() -> None:
    none, all_ = Arm("v", 1000, 0), Arm("c", 1000, 1000)
    assert conversion(none, Arm("c", 1000, 0)) is not None
    assert conversion(none, Arm("c", 1000, 0)).ci95 is None  # type: ignore[union-attr]
    assert conversion(all_, Arm("v", 1000, 1000)).p_value is None  # type: ignore[union-attr]
    assert rate_interval(all_) == (1.0, 1.0)
    assert compare(none, Arm("c", 1000, 0)).lift is None
    assert plan([none, Arm("c", 1000, 0)], 0.1, 3).subscribers_needed is None  # no base rate
    assert plan([all_, Arm("c", 1000, 1000)], 0.1, 3).subscribers_needed is None


def test_more_converted_than_exposed_is_no_proportion() -> None:
    assert Arm("v", 3, 7).rate is None and compare(Arm("v", 3, 7), Arm("c", 10, 1)).lift is None


def test_huge_counts_stay_finite() -> None:
    big = 10**12
    got = compare(Arm("v", big, big // 10 + 10**8), Arm("c", big, big // 10))
    assert got.conversion is not None and got.conversion.p_value is not None
    assert got.conversion.p_value < 1e-10 and all(map(math.isfinite, got.conversion.ci95 or ()))
    tiny = compare(Arm("v", big + 1, big // 10), Arm("c", big, big // 10))
    assert tiny.conversion is not None and tiny.conversion.p_value == 1.0


def test_ties() -> None:
    got = compare(Arm("v", 5000, 500), Arm("c", 5000, 500))
    assert got.conversion is not None and got.conversion.estimate == 0.0
    assert got.conversion.p_value == 1.0 and got.lift == 0.0


# -- planning ------------------------------------------------------------------------------


def _detects(n: int, p0: float, mde: float, m: int) -> bool:
    """The planning rule written out again: the interval half-width over 2n subscribers plus
    z_0.8 standard errors reaches the effect."""
    p1 = min(1.0, p0 * (1 + mde))
    se = math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n)
    return bool(sequential.halfwidth(se, 2 * n, 0.05 / m) + sp.norm.ppf(0.8) * se <= p1 - p0)


@pytest.mark.parametrize(("p0", "mde", "m"), [(0.1, 0.1, 1), (0.05, 0.2, 2), (0.3, 0.05, 19)])
def test_subscribers_needed_is_the_smallest_n_that_detects_the_mde(
    p0: float, mde: float, m: int
) -> None:
    n = subscribers_needed(p0, mde, m)
    assert n is not None and _detects(n, p0, mde, m) and not _detects(n - 1, p0, mde, m)


def test_plan_days_at_the_current_traffic_and_bounds() -> None:
    arms = [Arm("c", 1000, 100), Arm("v", 800, 80)]
    got = plan(arms, 0.1, days_running=4)
    assert got.subscribers_needed is not None
    slowest = math.ceil((got.subscribers_needed - 800) * 4 / 800)
    assert got.days_needed == slowest
    assert plan(arms, 1e-9, 4).subscribers_needed is None  # past 2^53 - 1: never promised
    assert (subscribers_needed(0.1, 1e-6, 1) or 0) <= MAX_EXACT
    done = plan([Arm("c", 10**7, 10**6), Arm("v", 10**7, 10**6)], 0.1, 30)
    assert done.days_needed == 0
