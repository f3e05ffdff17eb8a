"""Shop settings as the counting path sees them: an in-memory cache in front of Redis.

Settings arrive on the compacted shops topic. At start the worker reads that topic to its end
(:func:`stream.services.settings_bootstrap.bootstrap_settings`) before counting anything;
afterwards the shops consumer keeps Redis current and every worker refreshes its cache from
Redis.
"""

from __future__ import annotations

from schemas.models import ShopSettings
from stream.state.store import SettingsStore

DEFAULT_TIMEZONE = "UTC"
DEFAULT_WEEK_START = "monday"


class ShopDirectory:
    def __init__(self, store: SettingsStore) -> None:
        self._store = store
        self._shops: dict[str, ShopSettings] = {}
        self._timezones: dict[str, str] = {}

    def timezone(self, shop_id: str) -> str:
        return self._timezones.get(shop_id, DEFAULT_TIMEZONE)

    def get(self, shop_id: str) -> ShopSettings | None:
        return self._shops.get(shop_id)

    def __len__(self) -> int:
        return len(self._shops)

    async def refresh(self) -> None:
        """Replace the cache with what Redis holds."""
        self._set(await self._store.all_shops())

    async def apply(self, settings: ShopSettings) -> None:
        await self._store.put_shop(settings)
        self._shops[settings.shop_id] = settings
        self._timezones[settings.shop_id] = settings.timezone

    async def remove(self, shop_id: str) -> None:
        await self._store.delete_shop(shop_id)
        self._shops.pop(shop_id, None)
        self._timezones.pop(shop_id, None)

    def _set(self, shops: dict[str, ShopSettings]) -> None:
        self._shops = dict(shops)
        self._timezones = {k: v.timezone for k, v in shops.items()}
