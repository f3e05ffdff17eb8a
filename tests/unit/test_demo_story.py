"""The demo's story reads as told: a true winner, a tie, a skewed split, weekends busier, a DST
switch inside the history, nothing in the future, every record valid. Dates derive from now."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.decode import decode
from schemas.models import Kind, Rejected
from stream.devtools.demo_story import HISTORY_DAYS, Story, latest_switch
from stream.stats.decision import decide
from stream.stats.proportions import Arm
from stream.stats.srm import srm_test

NOW = datetime.now(UTC).replace(microsecond=0)
KINDS = {"view": Kind.VIEW, "click": Kind.CLICK, "upgrade": Kind.UPGRADE, "shop": Kind.SHOP}


@pytest.fixture(scope="module")
def records() -> list[object]:
    return list(Story(seed=7).history(NOW))


def test_same_seed_same_bytes() -> None:
    assert list(Story(seed=3, shops=1).history(NOW)) == list(Story(seed=3, shops=1).history(NOW))


def test_every_record_is_valid_and_in_the_past(records: list[object]) -> None:
    story = Story(seed=7)
    for r in [*story.settings(), *records[:20_000]]:
        result = decode(KINDS[r.topic_kind], r.key, r.value, NOW)  # type: ignore[attr-defined]
        assert not isinstance(result, Rejected), result
        occurred = getattr(result, "occurred_at", None)
        assert occurred is None or occurred <= NOW


def _arms(records: list[object], shop: str, group: str, since: date) -> dict[str, list[int]]:
    arms: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        doc = orjson.loads(r.value)  # type: ignore[attr-defined]
        if doc["shop_id"] != shop or doc.get("group_id") != group:
            continue
        if datetime.fromisoformat(doc["occurred_at"]).date() < since:
            continue
        kind = r.topic_kind  # type: ignore[attr-defined]
        if kind in ("view", "upgrade"):
            arms[doc["variation_id"]][kind == "upgrade"] += 1
    return arms


def test_a_true_winner_a_tie_and_an_srm_group_over_the_last_28_days(records: list[object]) -> None:
    since = NOW.date() - timedelta(days=27)
    for shop in ("demo-berlin", "demo-nyc", "demo-mumbai", "demo-utc", "demo-auckland"):
        win = _arms(records, shop, "annual-upgrade", since)
        _stats, verdict = decide(
            [Arm(v, n, 0, x, {}) for v, (n, x) in sorted(win.items())], "control"
        )
        assert verdict.winner == "discount-10", (shop, win)
        tie = _arms(records, shop, "premium-tier", since)
        _stats, verdict = decide(
            [Arm(v, n, 0, x, {}) for v, (n, x) in sorted(tie.items())], "control"
        )
        assert verdict.winner is None, (shop, tie)
        split = _arms(records, shop, "bundle-offer", since)
        assert srm_test({v: n for v, (n, _x) in split.items()}).mismatch, (shop, split)
        assert not srm_test(
            {v: n for v, (n, _x) in split.items()}, {"control": 3, "bonus-item": 2}
        ).mismatch


def test_weekends_are_busier_and_the_history_spans_a_dst_switch(records: list[object]) -> None:
    zone = ZoneInfo("Europe/Berlin")
    per_weekday: Counter[int] = Counter()
    days = set()
    for r in records:
        doc = orjson.loads(r.value)  # type: ignore[attr-defined]
        if doc["shop_id"] == "demo-berlin" and r.topic_kind == "view":  # type: ignore[attr-defined]
            local = datetime.fromisoformat(doc["occurred_at"]).astimezone(zone).date()
            per_weekday[local.weekday()] += 1
            days.add(local)
    assert per_weekday[5] > 1.25 * per_weekday[1]  # Saturday against Tuesday
    story = Story(seed=7)
    span = story.history_days(NOW)
    assert len(days) >= min(span, HISTORY_DAYS) - 1
    switched = latest_switch([ZoneInfo(tz) for _s, tz, _w, _c in story.shops], NOW)
    assert switched is not None and switched < span, (switched, span)
