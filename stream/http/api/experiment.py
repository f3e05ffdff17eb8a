"""A group's A/B decision as the API returns it (contract §4.1): over the experiment's whole run,
on exposed subscribers, always valid; from the summed exposures hashes of each variation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas.models import ExperimentSettings
from stream.state import keys
from stream.stats.arms import Arm, Revenue
from stream.stats.compare import Difference
from stream.stats.planning import DEFAULT_MDE, MAX_EXACT
from stream.stats.srm import srm_test
from stream.stats.verdict import VariationStats, Verdict, choose_control, decide


@dataclass(frozen=True, slots=True)
class Run:
    """The days an experiment's figures cover: from its start to today, inclusive."""

    start: date | None  # None: no exposure yet and no start date set
    end: date
    started_by: str | None  # "settings" | "first_exposure" | None
    mde: float

    @property
    def days(self) -> int:
        return 0 if self.start is None else (self.end - self.start).days + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat(),
            "days_running": self.days,
            "started_by": self.started_by,
            "mde": self.mde,
        }


def run_of(
    settings: ExperimentSettings | None, first_exposure: date | None, today: date, max_days: int
) -> Run:
    """From the start date in the shop's settings, else the first exposure; at most
    ``max_days`` days back from today (the API's range bound)."""
    mde = settings.mde if settings and settings.mde else DEFAULT_MDE
    start, by = (settings.start, "settings") if settings and settings.start else (None, None)
    if start is None and first_exposure is not None:
        start, by = first_exposure, "first_exposure"
    if start is not None:
        start = min(today, max(start, date.fromordinal(today.toordinal() - max_days + 1)))
    return Run(start, today, by, mde)


def _g(x: float | None) -> float | None:
    """Six significant digits (p-values far below 1e-6 stay non-zero); null when not finite."""
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def _n(x: int | None) -> int | None:
    """Every integer the API returns fits a JavaScript number exactly."""
    return None if x is None or not 0 <= x <= MAX_EXACT else x


def _pair(pair: tuple[float, float] | None) -> list[float | None] | None:
    return None if pair is None else [_g(pair[0]), _g(pair[1])]


def arm_of(variation: str, sums: Mapping[str, float]) -> Arm:
    revenue: dict[str, Revenue] = {}
    for code, total in sums.items():
        if code.startswith(keys.REVENUE + ":"):
            cur = code[2:]
            squares = sums.get(f"{keys.REVENUE_SQUARES}:{cur}", 0.0)
            revenue[cur] = Revenue(total, squares)
    return Arm(
        variation,
        int(sums.get(keys.EXPOSED, 0)),
        int(sums.get(keys.CONVERTED, 0)),
        int(sums.get(keys.DOWNGRADED, 0)),
        revenue,
        int(sums.get(keys.CROSSED, 0)),
    )


def _difference(d: Difference | None) -> dict[str, Any]:
    return {
        "diff": _g(d.estimate) if d else None,
        "diff_ci95": _pair(d.ci95) if d else None,
    }


def stats_json(s: VariationStats) -> dict[str, Any]:
    a, c = s.arm, s.comparison
    conv = c.conversion if c else None
    money = {}
    for cur in sorted(a.revenue) or []:
        money[cur] = {
            "mean": _g(a.mean_revenue(cur)),
            **_difference(c.revenue.get(cur) if c else None),
        }
    down = c.downgrades if c else None
    return {
        "exposed_subscribers": _n(a.exposed),
        "converted_subscribers": _n(a.converted),
        "crossed_subscribers": _n(a.crossed),
        "conversion_rate": _g(a.rate),
        "conversion_rate_ci95": _pair(s.conversion_rate_ci95),
        "lift": _g(s.lift),
        "diff_ci95": _pair(conv.ci95) if conv else None,
        "p_value": _g(conv.p_value) if conv else None,
        "p_value_adjusted": _g(s.p_value_adjusted),
        "enough_data": c.enough_data if c else None,
        "significant": s.significant,
        "revenue_per_subscriber": money,
        "downgrade_rate": _g(a.downgrade_rate),
        "downgrade_diff_lower": _g(down.ci95[0]) if down and down.ci95 else None,
        "guardrail_tripped": c.guardrail_tripped if c else None,
    }


def verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "winner": v.winner,
        "lift": _g(v.lift),
        "p_value_adjusted": _g(v.p_value_adjusted),
        "worse": list(v.worse),
        "guardrail": list(v.guardrail),
        "mde": v.plan.mde,
        "subscribers_needed": _n(v.plan.subscribers_needed),
        "days_needed": _n(v.plan.days_needed),
    }


def decision(
    exposures: Mapping[str, Mapping[str, float]],
    seen: Sequence[str],
    requested_control: str | None,
    weights: Mapping[str, float] | None,
    run: Run,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(stats by variation id, the group-level fields: control_variation_id, srm, verdict).
    The variations are those exposed in the run, configured in the weights or ``seen`` in the
    period."""
    ids = sorted(set(exposures) | set(weights or {}) | set(seen))
    arms = [arm_of(v, exposures.get(v, {})) for v in ids]
    control = choose_control(ids, requested_control)
    srm = srm_test({a.variation_id: a.exposed for a in arms if a.exposed}, weights)
    group: dict[str, Any] = {
        "control_variation_id": control,
        "experiment": {
            **run.to_json(),
            "exposed_subscribers": _n(sum(a.exposed for a in arms)),
            "crossed_subscribers": _n(sum(a.crossed for a in arms)),
        },
        "srm": {
            "p_value": _g(srm.p_value),
            "mismatch": srm.mismatch,
            "expected_split": "settings" if weights else "equal",
        },
        "verdict": None,
    }
    if control is None:
        return {}, group
    per_variation, verdict = decide(arms, control, mde=run.mde, days_running=run.days)
    group["verdict"] = verdict_json(verdict)
    return {s.variation_id: stats_json(s) for s in per_variation}, group
