"""The demo's story reads as told: a true winner, a tie, a skewed split, weekends busier, a DST
switch inside the history, nothing in the future, every record valid. Dates derive from now."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.decode import decode
from schemas.models import Kind, Rejected
from stream.devtools.demo_story import HISTORY_DAYS, Story, latest_switch
from stream.stats.arms import Arm
from stream.stats.srm import srm_test
from stream.stats.verdict import decide

NOW = datetime.now(UTC).replace(microsecond=0)
KINDS = {"view": Kind.VIEW, "click": Kind.CLICK, "upgrade": Kind.UPGRADE, "shop": Kind.SHOP}


@pytest.fixture(scope="module")
def records() -> list[object]:
    return list(Story(seed=7).history(NOW))


@pytest.fixture(scope="module")
def docs(records: list[object]) -> list[tuple[str, dict[str, Any]]]:
    """(topic kind, parsed value) of every record, parsed once for the module's tests."""
    return [(r.topic_kind, orjson.loads(r.value)) for r in records]  # type: ignore[attr-defined]


def test_same_seed_same_bytes() -> None:
    assert list(Story(seed=3, shops=1).history(NOW)) == list(Story(seed=3, shops=1).history(NOW))


def test_every_record_is_valid_and_in_the_past(records: list[object]) -> None:
    story = Story(seed=7)
    for r in [*story.settings(), *records[:20_000]]:
        result = decode(KINDS[r.topic_kind], r.key, r.value, NOW)  # type: ignore[attr-defined]
        assert not isinstance(result, Rejected), result
        occurred = getattr(result, "occurred_at", None)
        assert occurred is None or occurred <= NOW


Arms = dict[str, list[int]]


def _arms(docs: list[tuple[str, dict[str, Any]]]) -> dict[tuple[str, str], Arms]:
    """(shop, group) -> variation -> [exposed, converted subscribers] over the history, as the
    contract counts them (first view with a subscriber_id; one upgrade converts), in one pass."""
    first: dict[tuple[str, str, str], str] = {}
    converted: set[tuple[str, str, str]] = set()
    anonymous = 0
    for kind, doc in docs:
        if kind not in ("view", "upgrade") or "group_id" not in doc:
            continue
        if "subscriber_id" not in doc:
            anonymous += 1
            continue
        who = (doc["shop_id"], doc["group_id"], doc["subscriber_id"])
        if kind == "view":
            first.setdefault(who, doc["variation_id"])
        else:
            converted.add(who)
    assert anonymous > 0
    arms: dict[tuple[str, str], Arms] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for (shop, group, sub), variation in first.items():
        arm = arms[(shop, group)][variation]
        arm[0] += 1
        arm[1] += (shop, group, sub) in converted
    return arms


def test_a_true_winner_a_tie_and_an_srm_group_on_exposed_subscribers(
    docs: list[tuple[str, dict[str, Any]]],
) -> None:
    by_group = _arms(docs)
    days = Story(seed=7).history_days(NOW)
    for shop in ("demo-berlin", "demo-nyc", "demo-mumbai", "demo-utc", "demo-auckland"):
        for group, winner in (("annual-upgrade", "discount-10"), ("premium-tier", None)):
            arms = by_group[(shop, group)]
            _stats, verdict = decide(
                [Arm(v, n, x) for v, (n, x) in sorted(arms.items())],
                "control",
                mde=0.1,
                days_running=days,
            )
            assert verdict.winner == winner and not verdict.worse, (shop, group, arms)
        split = {v: n for v, (n, _x) in by_group[(shop, "bundle-offer")].items()}
        assert srm_test(split).mismatch, (shop, split)
        assert not srm_test(split, {"control": 3, "bonus-item": 2}).mismatch, (shop, split)


def test_weekends_are_busier_and_the_history_spans_a_dst_switch(
    docs: list[tuple[str, dict[str, Any]]],
) -> None:
    zone = ZoneInfo("Europe/Berlin")
    per_weekday: Counter[int] = Counter()
    days = set()
    for kind, doc in docs:
        if doc["shop_id"] == "demo-berlin" and kind == "view":
            local = datetime.fromisoformat(doc["occurred_at"]).astimezone(zone).date()
            per_weekday[local.weekday()] += 1
            days.add(local)
    assert per_weekday[5] > 1.25 * per_weekday[1]  # Saturday against Tuesday
    story = Story(seed=7)
    span = story.history_days(NOW)
    assert len(days) >= min(span, HISTORY_DAYS) - 1
    switched = latest_switch([ZoneInfo(tz) for _s, tz, _w, _c in story.shops], NOW)
    assert switched is not None and switched < span, (switched, span)
