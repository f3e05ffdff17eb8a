"""Numbers out of HTTP: each shop's overview totals, compared with the reference aggregator's."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from stream.devtools.workers import http_get
from tests.support.expected_state import ExpectedState

Totals = dict[str, dict[str, Any]]  # shop -> metric -> value

_DAY = ":day:"


def expected_totals(expected: ExpectedState) -> tuple[Totals, dict[str, tuple[str, str]]]:
    """Per shop: views, clicks, conversions, downgrades and revenue per currency summed over
    every day the reference has, and the (first, last) day to ask the API for."""
    totals: Totals = {}
    spans: dict[str, tuple[str, str]] = {}
    for key, fields in expected.hashes.items():
        if _DAY not in key:
            continue
        shop = key[key.index("{") + 1 : key.index("}")]
        day = key.rsplit(":", 1)[1]
        first, last = spans.get(shop, (day, day))
        spans[shop] = (min(first, day), max(last, day))
        t = totals.setdefault(shop, _empty())
        for f, v in fields.items():
            if f.startswith("r:"):
                t["revenue_minor"][f[2:]] = t["revenue_minor"].get(f[2:], 0) + v
            elif f in _METRICS:
                t[_METRICS[f]] += v
    return totals, spans


_METRICS = {"v": "banner_views", "c": "banner_clicks", "u": "conversions", "d": "downgrades"}


def _empty() -> dict[str, Any]:
    return {name: 0 for name in _METRICS.values()} | {"revenue_minor": {}}


def http_totals(url: str, spans: dict[str, tuple[str, str]]) -> Totals:
    out: Totals = {}
    for shop, (first, last) in spans.items():
        status, body = http_get(
            f"{url}/v1/shops/{shop}/overview?period=custom&from={first}&to={last}", timeout=10
        )
        if status == 503:  # the API's Redis connection broke (Redis restarted): ask again
            out[shop] = {"unavailable": body[:300].decode(errors="replace")}
            continue
        assert status == 200, (shop, status, body[:300])
        metrics = json.loads(body)["metrics"]
        t = {name: metrics[name] for name in _METRICS.values()}
        t["revenue_minor"] = {c: v for c, v in metrics["revenue_minor"].items() if v}
        out[shop] = t
    return out


async def assert_http_totals(url: str, expected: ExpectedState, timeout_s: float) -> Totals:
    """Wait until the API answers the reference's totals for every shop, then check they stay
    (nothing counted twice later)."""
    want, spans = expected_totals(expected)
    for t in want.values():
        t["revenue_minor"] = {c: v for c, v in t["revenue_minor"].items() if v}
    deadline = time.monotonic() + timeout_s
    got = await asyncio.to_thread(http_totals, url, spans)
    while got != want and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        got = await asyncio.to_thread(http_totals, url, spans)
    assert got == want, _diff(want, got)
    await asyncio.sleep(2)
    later = await asyncio.to_thread(http_totals, url, spans)
    assert later == want, "moved after matching (counted twice): " + _diff(want, later)
    return got


def _diff(want: Totals, got: Totals) -> str:
    lines = []
    for shop in sorted(set(want) | set(got)):
        w, g = want.get(shop, {}), got.get(shop, {})
        for metric in sorted(set(w) | set(g)):
            if w.get(metric) != g.get(metric):
                lines.append(f"{shop} {metric}: expected {w.get(metric)}, API says {g.get(metric)}")
    return "\n".join(lines)
