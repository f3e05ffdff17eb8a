"""The shop list on a real Redis (stream/state/shop_list.py): it follows the retention, pages in
shop id order (all shops, or a token's), and takes over an earlier version's us:shops:seen."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from schemas.models import ShopSettings
from stream.state import keys, shop_list
from stream.state.redis import RedisStore

pytestmark = pytest.mark.integration

TODAY = 20_000  # days since the epoch: the functions take the day, no clock involved


async def test_the_list_follows_the_retention_and_pages_in_id_order(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisStore(client)
    try:
        await client.sadd(keys.SHOPS_SEEN_LEGACY, "legacy-a", "legacy-b")  # an earlier version's
        assert await store.fold_legacy_shops(TODAY) == 2
        assert not await client.exists(keys.SHOPS_SEEN_LEGACY)
        await store.mark_shops_seen([f"old-{i:04}" for i in range(2_500)], TODAY - 900)
        await store.mark_shops_seen(["old-0007"], TODAY)  # seen again: stays
        await store.mark_shops_seen(["old-0008"], TODAY - 950)  # an older day never lowers it
        await store.write_shops(
            {"old-0009": ShopSettings("old-0009", "UTC", "monday", "USD")}
        )  # has settings
        await store.mark_shops_seen(["new-b", "new-a"], TODAY)
        await store.write_shops({"configured": ShopSettings("configured", "UTC", "monday", "USD")})
        assert await store.trim_shops(TODAY, TODAY - 802) == 2_499
        assert await store.trim_shops(TODAY, TODAY - 802) == 0
        want = ["configured", "legacy-a", "legacy-b", "new-a", "new-b", "old-0007", "old-0009"]
        pages: list[list[str]] = []
        after = None
        while True:
            ids, after = await shop_list.page(client, after, 3, None)
            pages.append(ids)
            if after is None:
                break
        assert pages == [want[:3], want[3:6], want[6:]]
        mine = frozenset({"new-a", "old-0009", "old-0001", "nobody"})
        assert await shop_list.page(client, None, 1, mine) == (["new-a"], "new-a")
        assert await shop_list.page(client, "new-a", 1, mine) == (["old-0009"], None)
        assert await client.zscore(keys.SHOPS_ACTIVE, "old-0008") is None
    finally:
        await client.aclose()
