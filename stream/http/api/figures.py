"""From summed raw counters to the contract's metrics, and relative change. Pure.

Raw sums are keyed by metric code (stream/state/keys.py): ``v`` views, ``c`` clicks,
``u`` conversions, ``d`` downgrades, ``r:CUR`` revenue, ``e:CUR`` expansion MRR,
``x:CUR`` contraction MRR, ``n:CUR`` net MRR (transitions).
Rates are ratios of sums and ``None`` when the denominator is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Money = dict[str, int]


def ratio(numerator: int, denominator: int | None) -> float | None:
    if not denominator:
        return None
    return round(numerator / denominator, 6)


def money(raw: Mapping[str, int], code: str) -> Money:
    prefix = code + ":"
    return {k[len(prefix) :]: v for k, v in sorted(raw.items()) if k.startswith(prefix)}


def _net(expansion: Money, contraction: Money) -> Money:
    return {
        cur: expansion.get(cur, 0) - contraction.get(cur, 0)
        for cur in sorted(set(expansion) | set(contraction))
    }


def metrics(
    raw: Mapping[str, int],
    *,
    unique_upgraders: int | None = None,
    active_subscribers: int | None = None,
) -> dict[str, Any]:
    views, clicks = raw.get("v", 0), raw.get("c", 0)
    conversions, downgrades = raw.get("u", 0), raw.get("d", 0)
    expansion, contraction = money(raw, "e"), money(raw, "x")
    net = _net(expansion, contraction)
    out: dict[str, Any] = {
        "banner_views": views,
        "banner_clicks": clicks,
        "conversions": conversions,
        "downgrades": downgrades,
        "click_through_rate": ratio(clicks, views),
        "conversion_rate": ratio(conversions, clicks),
        "offer_conversion_rate": ratio(conversions, views),
        "revenue_minor": money(raw, "r"),
        "expansion_mrr_minor": expansion,
        "contraction_mrr_minor": contraction,
        "net_mrr_minor": net,
        "net_arr_minor": {cur: 12 * v for cur, v in net.items()},
    }
    if unique_upgraders is not None:
        out["unique_upgraders"] = unique_upgraders
    if active_subscribers is not None or unique_upgraders is not None:
        out["active_subscribers"] = active_subscribers
        out["upgrade_rate"] = ratio(conversions, active_subscribers)
    return out


def transition_metrics(raw: Mapping[str, int]) -> dict[str, Any]:
    return {
        "conversions": raw.get("u", 0),
        "downgrades": raw.get("d", 0),
        "revenue_minor": money(raw, "r"),
        "net_mrr_minor": money(raw, "n"),
    }


def _relative(current: Any, base: Any) -> float | None:
    if not isinstance(current, int | float) or not isinstance(base, int | float) or not base:
        return None
    return round((current - base) / abs(base), 6)


def change(current: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """Relative change per metric (``None`` when the base is 0 or unknown); per currency for
    money."""
    out: dict[str, Any] = {}
    for name, value in current.items():
        other = base.get(name)
        if isinstance(value, dict) or isinstance(other, dict):
            value, other = value or {}, other or {}
            out[name] = {
                cur: _relative(value.get(cur, 0), other.get(cur, 0))
                for cur in sorted(set(value) | set(other))
            }
        else:
            out[name] = _relative(value, other)
    return out


def add(into: dict[str, int], raw: Mapping[str, int]) -> dict[str, int]:
    for k, v in raw.items():
        into[k] = into.get(k, 0) + v
    return into
