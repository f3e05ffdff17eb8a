"""stream.stats' tails, Holm and SRM against independent implementations: scipy and statsmodels
(the dev extra) as oracles. The always-valid comparisons: tests/unit/test_sequential.py and
test_verdict.py."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp
from statsmodels.stats.multitest import multipletests

from stream.stats.distributions import chi2_sf, normal_sf, regularized_gamma_q, two_sided_p
from stream.stats.srm import srm_test
from stream.stats.verdict import holm


def statsmodels_holm(p_values: Sequence[float]) -> list[float]:
    """statsmodels' Holm-adjusted p-values. Its multipletests runs gc.collect() after every Holm
    call, which costs 0.1-0.6 s in a test process's heap and decides nothing: skipped here."""
    with mock.patch.object(gc, "collect", lambda *_: 0):
        _reject, adjusted, _s, _b = multipletests(list(p_values), method="holm")
    return list(adjusted)


@pytest.mark.parametrize("z", [-8.0, -3.1, -1.959964, -0.5, 0.0, 0.3, 1.0, 2.5, 6.0, 9.0])
def test_normal_tails_match_scipy(z: float) -> None:
    assert normal_sf(z) == pytest.approx(sp.norm.sf(z), rel=1e-12, abs=1e-300)
    assert two_sided_p(z) == pytest.approx(2 * sp.norm.sf(abs(z)), rel=1e-12, abs=1e-300)


@given(
    df=st.integers(min_value=1, max_value=60),
    x=st.floats(min_value=0.0, max_value=400.0, allow_nan=False),
)
@settings(max_examples=100, deadline=None)
def test_chi2_sf_matches_scipy(df: int, x: float) -> None:
    assert chi2_sf(x, df) == pytest.approx(sp.chi2.sf(x, df), rel=1e-9, abs=1e-250)


@given(
    a=st.floats(min_value=0.05, max_value=200.0),
    x=st.floats(min_value=0.0, max_value=500.0),
)
@settings(max_examples=100, deadline=None)
def test_regularized_gamma_q_matches_scipy(a: float, x: float) -> None:
    from scipy.special import gammaincc

    assert regularized_gamma_q(a, x) == pytest.approx(gammaincc(a, x), rel=1e-9, abs=1e-250)


def test_chi2_critical_values_from_tables() -> None:
    # Upper-tail critical values of the chi-square distribution (NIST/SEMATECH e-Handbook,
    # table 1.3.6.7.4): P(X >= c) for the tabulated c.
    assert chi2_sf(3.841, 1) == pytest.approx(0.05, abs=1e-4)
    assert chi2_sf(10.828, 1) == pytest.approx(0.001, abs=1e-5)
    assert chi2_sf(13.816, 2) == pytest.approx(0.001, abs=1e-5)


@given(st.lists(st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)), max_size=8))
@settings(max_examples=100, deadline=None)
def test_holm_matches_statsmodels(p_values: list[float | None]) -> None:
    got = holm(p_values)
    known = [p for p in p_values if p is not None]
    if known:
        expected = statsmodels_holm(known)
        assert [g for g in got if g is not None] == pytest.approx(expected, rel=1e-12)
    assert [g is None for g in got] == [p is None for p in p_values]


def test_holm_by_hand() -> None:
    # m = 3: sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


@given(
    views=st.lists(st.integers(min_value=0, max_value=100_000), min_size=2, max_size=6),
    weights=st.one_of(
        st.none(), st.lists(st.floats(min_value=0.1, max_value=10), min_size=6, max_size=6)
    ),
)
@settings(max_examples=100, deadline=None)
def test_srm_matches_scipy_chisquare(views: list[int], weights: list[float] | None) -> None:
    observed = {f"v{i}": n for i, n in enumerate(views)}
    given_weights = {f"v{i}": w for i, w in enumerate(weights[: len(views)])} if weights else None
    got = srm_test(observed, given_weights)
    total = sum(views)
    if total == 0:
        assert got.p_value is None and not got.mismatch
        return
    shares = [w / sum(weights[: len(views)]) for w in weights[: len(views)]] if weights else None
    expected = sp.chisquare(views, [total * s for s in shares] if shares else None).pvalue
    assert got.p_value == pytest.approx(float(expected), rel=1e-7, abs=1e-250)
    assert got.mismatch == (float(expected) < 0.001)


def test_srm_unweighted_variation_is_a_mismatch_and_weights_change_the_answer() -> None:
    assert srm_test({"a": 500, "b": 500, "c": 3}, {"a": 1, "b": 1}).mismatch
    skewed = {"a": 9000, "b": 1000}
    assert srm_test(skewed).mismatch
    assert not srm_test(skewed, {"a": 9, "b": 1}).mismatch
    assert srm_test({"a": 10}).p_value is None
