"""The demo's story (``dev --demo``): ~90 days of history that a first look can read, then the
same traffic live.

Per shop and group, each shop-local day gets views by a weekly pattern (weekends busier) and a
slow growth, spread over the local day (so days across a DST switch are 23 or 25 hours long).
Each view is by one of the shop's SUBSCRIBERS (a tenth by visitors without a ``subscriber_id``),
and a subscriber always sees the same variation of a group (assigned by a hash of the two, as an
A/B tool would); clicks and upgrades follow from each view at the variation's true rates, an
upgrade by the viewing subscriber:

- ``annual-upgrade``: ``discount-10`` truly converts better than ``control`` (5 % vs 2.5 % a view);
- ``premium-tier``: ``free-shipping`` and ``control`` convert alike (3 %): no winner;
- ``bundle-offer``: meant to split equally, but 60 % of subscribers get ``control``: the SRM
  check trips (except in ``demo-utc``, whose settings declare that 3:2 split).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from schemas.timestamps import utc_text
from stream.dates.clock import Clock, system_clock
from stream.devtools.demo import SHOP_PROFILES, DemoGenerator, DemoRecord
from stream.kafka.clients import make_producer, send_all
from stream.kafka.security import KafkaTarget
from stream.kafka.topics import ensure_topics
from stream.settings import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoryGroup:
    group_id: str
    split: dict[str, float]  # share of views per variation
    conversion: dict[str, float]  # true upgrades per view
    daily_views: int


GROUPS = (
    StoryGroup(
        "annual-upgrade",
        {"control": 0.5, "discount-10": 0.5},
        {"control": 0.025, "discount-10": 0.05},
        130,
    ),
    StoryGroup(
        "premium-tier",
        {"control": 0.5, "free-shipping": 0.5},
        {"control": 0.03, "free-shipping": 0.03},
        70,
    ),
    StoryGroup(
        "bundle-offer",
        {"control": 0.6, "bonus-item": 0.4},
        {"control": 0.02, "bonus-item": 0.02},
        50,
    ),
)
WEEKDAY = (1.0, 0.95, 0.95, 1.0, 1.15, 1.45, 1.35)  # Monday .. Sunday
CLICK_RATE = 0.15
HISTORY_DAYS = 90
SUBSCRIBERS = 8_000  # per shop: over the history each sees about three banners
ANONYMOUS_SHARE = 0.1  # views by visitors not known as subscribers (in no experiment)


def assigned(group: StoryGroup, subscriber: str) -> str:
    """The variation ``subscriber`` sees in ``group``: always the same, by the group's split."""
    u = zlib.crc32(f"{group.group_id}/{subscriber}".encode()) / 2**32
    for variation, share in group.split.items():
        u -= share
        if u < 0:
            return variation
    return list(group.split)[-1]


class Story:
    def __init__(self, seed: int = 7, shops: int = 5) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.shops = [SHOP_PROFILES[i % len(SHOP_PROFILES)] for i in range(min(shops, 5))]
        self._n = 0
        self._owed: dict[tuple[str, str, str], float] = {}

    def settings(self) -> list[DemoRecord]:
        out = []
        for shop, tz, week, cur in self.shops:
            doc: dict[str, object] = {
                "shop_id": shop,
                "timezone": tz,
                "week_start": week,
                "currency": cur,
            }
            if shop == "demo-utc":
                doc["groups"] = {"bundle-offer": {"control": 3, "bonus-item": 2}}
            out.append(DemoRecord("shop", shop.encode(), orjson.dumps(doc), "setting"))
        return out

    def history_days(self, now: datetime) -> int:
        """HISTORY_DAYS, or back to the latest DST switch of a shop's zone when none falls in
        them (mid-July to late September, for these zones), so the history always has one."""
        since = latest_switch([ZoneInfo(tz) for _s, tz, _w, _c in self.shops], now)
        return max(HISTORY_DAYS, since + 7) if since is not None else HISTORY_DAYS

    def history(self, now: datetime) -> Iterator[DemoRecord]:
        """Every shop-local day of the history to today, today only up to ``now``. A longer
        history is thinner: the number of views stays that of HISTORY_DAYS days."""
        days = self.history_days(now)
        thin = HISTORY_DAYS / days
        for shop, tz, _week, cur in self.shops:
            zone = ZoneInfo(tz)
            today = now.astimezone(zone).date()
            for back in range(days, -1, -1):
                day = today - timedelta(days=back)
                start = datetime(day.year, day.month, day.day, tzinfo=zone)
                growth = 0.75 + 0.25 * (days - back) / days
                for group in GROUPS:
                    views = round(group.daily_views * WEEKDAY[day.weekday()] * growth * thin)
                    for _ in range(views):
                        # wall-clock time within the local day (a DST day too)
                        at = start + timedelta(seconds=self.rng.random() * 86_400)
                        if at <= now:
                            yield from self._view(shop, cur, group, at)

    def live(self, now: datetime, n: int) -> Iterator[DemoRecord]:
        """``n`` views (with their clicks and upgrades) occurring ``now``, across the shops and
        groups in the history's proportions."""
        weights = [g.daily_views for g in GROUPS]
        for _ in range(n):
            shop, _tz, _week, cur = self.rng.choice(self.shops)
            group = self.rng.choices(GROUPS, weights)[0]
            yield from self._view(shop, cur, group, now)

    def _view(
        self, shop: str, currency: str, group: StoryGroup, at: datetime
    ) -> Iterator[DemoRecord]:
        rng = self.rng
        self._n += 1
        subscriber = f"sub-{rng.randrange(SUBSCRIBERS)}"
        variation = assigned(group, subscriber)
        base: dict[str, object] = {
            "event_id": f"s{self.seed}-{self._n}",
            "shop_id": shop,
            "occurred_at": utc_text(at),
            "group_id": group.group_id,
            "variation_id": variation,
        }
        key = shop.encode()
        if rng.random() < ANONYMOUS_SHARE:
            yield DemoRecord("view", key, orjson.dumps(base), "count")
            return
        yield DemoRecord("view", key, orjson.dumps({**base, "subscriber_id": subscriber}), "count")
        if rng.random() < CLICK_RATE:
            yield DemoRecord(
                "click",
                key,
                orjson.dumps(
                    {**base, "event_id": f"{base['event_id']}c", "subscriber_id": subscriber}
                ),
                "count",
            )
        # conversions by quota, not by coin: each arm converts at its true rate in any window,
        # so the story (who wins, who ties) never depends on the draw or the day it is told
        arm = (shop, group.group_id, variation)
        start = self._owed.get(arm)
        owed = (rng.random() if start is None else start) + group.conversion[variation]
        if owed >= 1:
            owed -= 1
            yield self._upgrade(base, subscriber, currency, key)
        self._owed[arm] = owed

    def _upgrade(
        self, base: dict[str, object], subscriber: str, currency: str, key: bytes
    ) -> DemoRecord:
        annual = self.rng.random() < 0.5  # monthly -> annual within "pro", or basic -> pro
        src = {
            "product_ids": ["pro" if annual else "basic"],
            "selling_plan_id": "monthly",
            "mrr_minor": 2500 if annual else 1500,
        }
        dst = {
            "product_ids": ["pro"],
            "selling_plan_id": "annual" if annual else "monthly",
            "mrr_minor": 2750 if annual else 2500,
        }
        doc = {
            **base,
            "event_id": f"{base['event_id']}u",
            "subscriber_id": subscriber,
            "order_id": f"order-{base['event_id']}",
            "from": src,
            "to": dst,
            "revenue_minor": 27_000 if annual else 1000,
            "currency": currency,
        }
        return DemoRecord("upgrade", key, orjson.dumps(doc), "count")


def latest_switch(zones: list[ZoneInfo], now: datetime, limit_days: int = 200) -> int | None:
    """Days since the latest change of UTC offset in any of ``zones`` (None within the limit)."""
    for back in range(limit_days):
        later, earlier = now - timedelta(days=back), now - timedelta(days=back + 1)
        if any(later.astimezone(z).utcoffset() != earlier.astimezone(z).utcoffset() for z in zones):
            return back
    return None


async def produce_story(
    bootstrap: KafkaTarget,
    topics: Topics,
    *,
    rate: float,
    count: int,
    seed: int = 7,
    shops: int = 5,
    partitions: int = 8,
    clock: Clock = system_clock,
) -> int:
    """Settings and snapshots, the history (timed, logged), then live views at ``rate`` a
    second until ``count`` messages in all."""
    story = Story(seed=seed, shops=shops)
    snapshots = DemoGenerator(seed=seed, shops=shops, days=HISTORY_DAYS, clock=clock)
    await ensure_topics(bootstrap, topics, partitions)
    producer = make_producer(bootstrap)
    await producer.start()
    sent = 0
    try:
        for record in [*story.settings(), *snapshots.subscriber_snapshots()]:
            await producer.send(record.topic(topics), key=record.key, value=record.value)
        started = time.monotonic()
        sent = await send_all(
            producer, ((r.topic(topics), r.key, r.value) for r in story.history(clock()))
        )
        log.info("history: %d messages in %.1f s", sent, time.monotonic() - started)
        print(f"history: {sent} messages in {time.monotonic() - started:.1f} s", flush=True)
        started, views = time.monotonic(), 0
        while sent < count:
            batch = max(1, min(20, round(rate)))
            for record in story.live(clock(), batch):
                await producer.send(record.topic(topics), key=record.key, value=record.value)
                sent += 1
            views += batch
            await asyncio.sleep(max(0.0, started + views / rate - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent
