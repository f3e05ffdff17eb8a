"""The verdict over exposed subscribers (stream/stats/verdict.py): Holm over the always-valid
p-values (statsmodels as the oracle), the headline, the warnings and the plan; one variation
and 20 variations."""

from __future__ import annotations

import gc
from unittest import mock

import pytest
from statsmodels.stats.multitest import multipletests

from stream.stats.arms import Arm
from stream.stats.verdict import choose_control, decide, holm


def statsmodels_holm(p_values: list[float]) -> list[float]:
    # multipletests runs gc.collect() after each Holm call (0.1-0.6 s in a test process)
    with mock.patch.object(gc, "collect", lambda *_: 0):
        return list(multipletests(p_values, method="holm")[1])


def test_twenty_variations_holm_adjusted_like_statsmodels() -> None:
    arms = [Arm("control", 20_000, 2000)] + [
        Arm(f"v{i:02}", 20_000, 2000 + 20 * i) for i in range(19)
    ]
    stats, verdict = decide(arms, "control", mde=0.1, days_running=10)
    others = [s for s in stats if not s.is_control]
    raw = [s.comparison.conversion.p_value for s in others]  # type: ignore[union-attr]
    assert all(p is not None for p in raw)
    want = statsmodels_holm(raw)  # type: ignore[arg-type]
    for s, w in zip(others, want, strict=True):
        assert s.p_value_adjusted == pytest.approx(w, rel=1e-12)
    assert not others[0].significant and others[-1].significant
    assert verdict.winner == "v18"  # the smallest adjusted p-value, then the largest lift


def test_one_variation_has_no_comparison_and_no_plan() -> None:
    stats, verdict = decide([Arm("control", 500, 50)], "control", mde=0.1, days_running=3)
    assert len(stats) == 1 and stats[0].comparison is None and not stats[0].significant
    assert verdict.winner is None and verdict.plan.subscribers_needed is None


def test_headline_is_the_best_improvement_and_worse_is_a_warning() -> None:
    arms = [
        Arm("control", 20_000, 2000),
        Arm("b", 20_000, 2300),
        Arm("c", 20_000, 2400),
        Arm("d", 20_000, 1000),
    ]
    stats, verdict = decide(arms, "control", mde=0.1, days_running=7)
    assert all(s.significant for s in stats if not s.is_control)
    assert verdict.winner == "c" and verdict.lift == pytest.approx(0.2)
    assert verdict.worse == ("d",) and verdict.guardrail == ()


def test_guardrail_names_variations_with_significantly_more_downgrades() -> None:
    arms = [Arm("control", 8000, 800, downgraded=100), Arm("b", 8000, 800, downgraded=220)]
    _stats, verdict = decide(arms, "control", mde=0.1, days_running=7)
    assert verdict.guardrail == ("b",) and verdict.winner is None


def test_without_a_winner_the_plan_says_how_long() -> None:
    arms = [Arm("control", 700, 70), Arm("b", 700, 75)]
    _stats, verdict = decide(arms, "control", mde=0.1, days_running=7)
    assert verdict.winner is None and verdict.plan.mde == 0.1
    needed = verdict.plan.subscribers_needed
    assert needed is not None and needed > 700
    assert verdict.plan.days_needed == -(-(needed - 700) * 7 // 700)


def test_holm_and_control_choice() -> None:
    assert holm([0.01, None, 0.04, 0.03]) == [0.03, None, 0.06, 0.06]
    assert choose_control(["b", "control", "a"], None) == "control"
    assert choose_control(["b", "a"], "b") == "b" and choose_control([], None) is None
