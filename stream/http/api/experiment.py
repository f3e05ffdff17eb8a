"""A group's A/B decision as the API returns it (contract §4.1): stats per variation, the
control, the sample-ratio check and a verdict, from the summed counters of each variation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.http.api import figures
from stream.stats.decision import VariationStats, Verdict, decide
from stream.stats.proportions import Arm, choose_control
from stream.stats.srm import srm_test


def _g(x: float | None) -> float | None:
    """Six significant digits: p-values far below 1e-6 stay non-zero."""
    return None if x is None else float(f"{x:.6g}")


def _pair(pair: tuple[float, float] | None) -> list[float | None] | None:
    return None if pair is None else [_g(pair[0]), _g(pair[1])]


def arms(variations: Mapping[str, Mapping[str, int]]) -> list[Arm]:
    return [
        Arm(
            variation_id=vid,
            views=raw.get("v", 0),
            clicks=raw.get("c", 0),
            conversions=raw.get("u", 0),
            revenue_minor=figures.money(raw, "r"),
        )
        for vid, raw in sorted(variations.items())
    ]


def stats_json(s: VariationStats) -> dict[str, Any]:
    c = s.comparison
    return {
        "conversion_rate": _g(s.conversion_rate),
        "conversion_rate_ci95": _pair(s.conversion_rate_ci95),
        "click_through_rate": _g(s.click_through_rate),
        "lift": _g(c.lift) if c else None,
        "diff_ci95": _pair(c.diff_ci95) if c else None,
        "p_value": _g(c.p_value) if c else None,
        "p_value_adjusted": _g(s.p_value_adjusted),
        "enough_data": c.enough_data if c else None,
        "significant": s.significant,
        "more_views_needed": c.more_views_needed if c else None,
        "revenue_per_view": {cur: _g(v) for cur, v in s.revenue_per_view.items()},
    }


def verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "winner": v.winner,
        "lift": _g(v.lift),
        "p_value_adjusted": _g(v.p_value_adjusted),
        "more_views_needed": v.more_views_needed,
        "worse": list(v.worse),
    }


def decision(
    variations: Mapping[str, Mapping[str, int]],
    requested_control: str | None,
    weights: Mapping[str, float] | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(stats by variation id, the group-level fields: control_variation_id, srm, verdict)."""
    all_arms = arms(variations)
    control = choose_control([a.variation_id for a in all_arms], requested_control)
    # Variations without views in the period (conversions only) are no SRM category of their own:
    # as one they raised a false alarm.
    srm = srm_test({a.variation_id: a.views for a in all_arms if a.views}, weights)
    group: dict[str, Any] = {
        "control_variation_id": control,
        "srm": {
            "p_value": _g(srm.p_value),
            "mismatch": srm.mismatch,
            "expected_split": "settings" if weights else "equal",
        },
        "verdict": None,
    }
    if control is None:
        return {}, group
    per_variation, verdict = decide(all_arms, control)
    group["verdict"] = verdict_json(verdict)
    return {s.variation_id: stats_json(s) for s in per_variation}, group
