"""Sample-ratio mismatch: is the views' split across variations the one intended?

Chi-square goodness of fit of the observed views against an equal split, or against the weights
of the shop's settings (``groups: {group_id: {variation_id: weight}}``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stream.stats.distributions import chi2_sf

SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class SampleRatio:
    p_value: float | None
    mismatch: bool


def srm_test(views: Mapping[str, int], weights: Mapping[str, float] | None = None) -> SampleRatio:
    """The categories are the observed variations plus any weighted one. With weights, a
    variation missing from them has weight 0 (its views are a mismatch by themselves). ``None``
    p-value (no mismatch) for fewer than two categories or no views at all."""
    categories = sorted(set(views) | set(weights or {}))
    total = sum(views.values())
    if len(categories) < 2 or total == 0:
        return SampleRatio(None, False)
    weight_sum = sum(max(0.0, (weights or {}).get(c, 0.0)) for c in categories)
    if weights and weight_sum > 0:
        shares = {c: max(0.0, weights.get(c, 0.0)) / weight_sum for c in categories}
    else:
        shares = {c: 1 / len(categories) for c in categories}
    statistic = 0.0
    for c in categories:
        observed, expected = views.get(c, 0), total * shares[c]
        if expected == 0:
            if observed:
                return SampleRatio(0.0, True)
            continue
        statistic += (observed - expected) ** 2 / expected
    df = sum(1 for c in categories if shares[c] > 0) - 1
    if df < 1:
        return SampleRatio(None, False)
    p_value = chi2_sf(statistic, df)
    return SampleRatio(p_value, p_value < SRM_ALPHA)
