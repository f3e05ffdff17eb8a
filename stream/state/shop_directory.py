"""Shop settings as the counting path sees them: a bounded cache of time zones in front of Redis.

Settings arrive on the compacted shops topic. At start the worker reads that topic to its end
(:func:`stream.services.settings_bootstrap.bootstrap_settings`) before counting anything;
afterwards the shops consumer keeps Redis current. Redis is the truth: the cache holds at most
``max_entries`` shops (least recently used evicted) and an entry older than ``max_age_s`` is
read again, so a change another worker wrote counts within that age. A shop not cached is read
from Redis before its events count (:meth:`ShopDirectory.timezones`), never assumed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from schemas.models import ShopSettings
from stream.state.shop_settings import DEFAULT_TIMEZONE
from stream.state.store import SettingsStore

MAX_AGE_S = 1.0  # a settings change another worker wrote counts within this


class ShopDirectory:
    def __init__(
        self,
        store: SettingsStore,
        *,
        max_entries: int = 100_000,
        max_age_s: float = MAX_AGE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.max_entries = max_entries
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        # shop id -> (when read, its time zone; DEFAULT_TIMEZONE for a shop without settings)
        self._zones: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._zones)

    async def timezones(self, shop_ids: Iterable[str]) -> dict[str, str]:
        """The time zone of each of ``shop_ids``: cached if read within ``max_age_s``, else
        read from Redis now (raises StoreUnavailable if it does not answer)."""
        now = self._monotonic()
        zones = self._zones
        out: dict[str, str] = {}
        missing: list[str] = []
        for shop in shop_ids:
            entry = zones.get(shop)
            if entry is None or now - entry[0] > self._max_age_s:
                missing.append(shop)
            else:
                zones.move_to_end(shop)
                out[shop] = entry[1]
        if missing:
            found = await self._store.get_shops(missing)
            for shop in missing:
                settings = found.get(shop)
                out[shop] = settings.timezone if settings is not None else DEFAULT_TIMEZONE
                self._put(shop, now, out[shop])
        return out

    async def refresh(self) -> None:
        """Forget entries past their age (they are read again when their shop counts)."""
        now = self._monotonic()
        zones = self._zones
        while zones:
            shop, (read_at, _) = next(iter(zones.items()))
            if now - read_at <= self._max_age_s:
                break  # least recently used first: the rest were used later
            del zones[shop]

    async def write(self, changes: Mapping[str, ShopSettings | None]) -> None:
        """Shops' new settings, or their removal (None), into Redis and then this cache."""
        if not changes:
            return
        await self._store.write_shops(changes)
        now = self._monotonic()
        for shop, settings in changes.items():
            if settings is None:
                self._zones.pop(shop, None)
            else:
                self._put(shop, now, settings.timezone)

    def _put(self, shop: str, read_at: float, timezone: str) -> None:
        zones = self._zones
        zones[shop] = (read_at, timezone)
        zones.move_to_end(shop)
        while len(zones) > self.max_entries:
            zones.popitem(last=False)
