"""Reads of the state in Redis for the API (key layout: stream/state/keys.py, docs/state.md).

Period sums run inside Redis (one read-only Lua call over the period's day hashes, all in the
shop's hash slot), so an overview for a year is one round trip.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from schemas.models import ExperimentSettings
from stream.state import keys, shop_list, shop_settings
from stream.state.redis import AnyRedis

# Sums exactly: Lua numbers are doubles (exact only to 2^53), so each stored integer is split
# into its digits above and below 10^9 and the two parts are summed apart; both sums stay far
# below 2^53 for any retention (a counter is at most 2^63: its high part is below 10^10).
_SUM_LUA = """
local high, low, order = {}, {}, {}
for _, k in ipairs(KEYS) do
  local kv = redis.call('HGETALL', k)
  for i = 1, #kv, 2 do
    local f, s = kv[i], kv[i + 1]
    local sign = 1
    if string.sub(s, 1, 1) == '-' then
      sign, s = -1, string.sub(s, 2)
    end
    local n = #s
    local h = 0
    if n > 9 then h = tonumber(string.sub(s, 1, n - 9)) end
    local l = tonumber(string.sub(s, math.max(1, n - 8)))
    if high[f] == nil then
      high[f], low[f] = 0, 0
      order[#order + 1] = f
    end
    high[f] = high[f] + sign * h
    low[f] = low[f] + sign * l
  end
end
local out = {}
for _, f in ipairs(order) do
  out[#out + 1] = f
  out[#out + 1] = string.format('%.0f', high[f])
  out[#out + 1] = string.format('%.0f', low[f])
end
return out
"""
_LOW_DIGITS = 10**9


@dataclass(frozen=True, slots=True)
class ShopView:
    shop_id: str
    timezone: str
    week_start: str
    currency: str | None
    groups: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    experiments: Mapping[str, ExperimentSettings] = field(default_factory=dict)

    @classmethod
    def of(cls, shop_id: str, doc: bytes | str) -> ShopView:
        """From the shop's stored settings document (stream/state/shop_settings.py)."""
        s = shop_settings.decode(shop_id, doc)
        return cls(shop_id, s.timezone, s.week_start, s.currency, s.groups, s.experiments)

    @classmethod
    def unset(cls, shop_id: str) -> ShopView:
        """A shop without settings: counted and read on the defaults."""
        return cls(shop_id, shop_settings.DEFAULT_TIMEZONE, shop_settings.DEFAULT_WEEK_START, None)

    def to_json(self) -> dict[str, Any]:
        return {
            "shop_id": self.shop_id,
            "timezone": self.timezone,
            "week_start": self.week_start,
            "currency": self.currency,
        }


def _s(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class StateReader:
    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis
        self._sum = redis.register_script(_SUM_LUA)

    async def shop(self, shop_id: str) -> ShopView:
        raw = await self.redis.hget(keys.SHOPS, shop_id)
        return ShopView.unset(shop_id) if raw is None else ShopView.of(shop_id, raw)

    async def shops(
        self, after: str | None, limit: int, only: frozenset[str] | None = None
    ) -> tuple[list[ShopView], str | None]:
        """A page of the listed shops (stream/state/shop_list.py) in shop id order, after
        ``after``, only those in ``only`` if given; and the next page's ``after``, if any."""
        ids, following = await shop_list.page(self.redis, after, limit, only)
        raws = await self.redis.hmget(keys.SHOPS, ids) if ids else []
        views = [
            ShopView.unset(sid) if raw is None else ShopView.of(sid, raw)
            for sid, raw in zip(ids, raws, strict=True)
        ]
        return views, following

    async def _summed(self, names: list[str]) -> dict[str, int]:
        if not names:
            return {}
        flat = await self._sum(keys=names, args=[])
        return {
            _s(flat[i]): int(flat[i + 1]) * _LOW_DIGITS + int(flat[i + 2])
            for i in range(0, len(flat), 3)
        }

    async def sum_days(self, shop: str, days: list[date]) -> dict[str, int]:
        return await self._summed([keys.day(shop, d.isoformat()) for d in days])

    async def per_day(self, shop: str, days: list[date]) -> list[dict[str, int]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.hgetall(keys.day(shop, d.isoformat()))
            rows = await pipe.execute()
        return [{_s(k): int(v) for k, v in row.items()} for row in rows]

    async def _split(self, names: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for fld, value in (await self._summed(names)).items():
            metric, ident = keys.split_field(fld)
            out[ident][metric] = value
        return dict(out)

    async def sum_groups(self, shop: str, days: list[date]) -> dict[str, dict[str, int]]:
        return await self._split([keys.groups(shop, d.isoformat()) for d in days])

    async def sum_variations(
        self, shop: str, days: list[date], group: str
    ) -> dict[str, dict[str, int]]:
        return await self._split([keys.variations(shop, d.isoformat(), group) for d in days])

    async def sum_transitions(
        self, shop: str, days: list[date], group: str
    ) -> dict[tuple[str, str, str], dict[str, int]]:
        out: dict[tuple[str, str, str], dict[str, int]] = {}
        by_id = await self._split([keys.transitions(shop, d.isoformat(), group) for d in days])
        for ident, values in by_id.items():
            variation, src, dst = orjson.loads(ident)
            out[(variation, src, dst)] = values
        return out

    async def sum_exposures(
        self, shop: str, days: list[date], group: str
    ) -> dict[str, dict[str, float]]:
        """The group's exposures hashes over ``days`` (exposure days), summed per variation:
        variation -> {code: total}. Counts are integers, the revenue sums floats (HINCRBYFLOAT),
        so they are summed here, not by the integer-exact script."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.hgetall(keys.exposures(shop, d.isoformat(), group))
            rows = await pipe.execute()
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for row in rows:
            for raw_field, raw_value in row.items():
                metric, variation = keys.split_field(_s(raw_field))
                sums = out[variation]
                sums[metric] = sums.get(metric, 0) + float(_s(raw_value))
        return dict(out)

    async def experiment_start(self, shop: str, group: str) -> date | None:
        """The first shop-local day with an exposure in the group, if any is remembered."""
        raw = await self.redis.hget(keys.experiment_starts(shop), group)
        return None if raw is None else date.fromisoformat(_s(raw))

    async def unique_upgraders(self, shop: str, days: list[date]) -> int:
        return int(await self.redis.pfcount(*[keys.upgraders(shop, d.isoformat()) for d in days]))

    async def active_subscribers(self, shop: str, on_or_before: date) -> int | None:
        snapshots = await self.redis.hgetall(keys.subscribers(shop))
        best: tuple[str, int] | None = None
        limit = on_or_before.isoformat()
        for raw_day, raw_count in snapshots.items():
            day = _s(raw_day)
            if day <= limit and (best is None or day > best[0]):
                best = (day, int(raw_count))
        return best[1] if best else None

    async def progress_signature(self, shop: str) -> bytes:
        """A digest of the shop's progress hash: it changes whenever a batch holding any of the
        shop's events is applied (offsets move), whichever worker applied it."""
        raw = await self.redis.hgetall(keys.progress(shop))
        items = sorted((_s(k), _s(v)) for k, v in raw.items())
        return hashlib.blake2b(orjson.dumps(items), digest_size=16).digest()

    async def last_event_ms(self, shop: str) -> int | None:
        raw = await self.redis.hget(keys.progress(shop), keys.LAST_EVENT)
        return int(raw) if raw is not None else None

    async def ledger_page(
        self, shop: str, lo_ms: int, hi_ms: int, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
        """Newest first within [lo_ms, hi_ms]; ``after`` = (score, member) of the last item seen.

        Members of equal score come in reverse lexical order (ZREVRANGEBYSCORE), so the cursor
        is exact even when many conversions share a millisecond."""
        key = keys.ledger(shop)
        items: list[tuple[str, int]] = []
        top: int | str = hi_ms
        if after is not None:
            score, member = after
            if lo_ms <= score <= hi_ms:
                same: list[Any] = await self.redis.zrevrangebyscore(
                    key, score, score, withscores=True
                )
                items = [(_s(m), int(sc)) for m, sc in same if _s(m) < member]
            top = f"({score}"
        if len(items) <= limit:
            rest: list[Any] = await self.redis.zrevrangebyscore(
                key, top, lo_ms, start=0, num=limit + 1 - len(items), withscores=True
            )
            items.extend((_s(m), int(sc)) for m, sc in rest)
        page = items[:limit]
        cursor = (page[-1][1], page[-1][0]) if len(items) > limit else None
        return [orjson.loads(m) for m, _ in page], cursor
