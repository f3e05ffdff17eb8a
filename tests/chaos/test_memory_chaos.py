"""Long version of the memory bound (``make chaos``): 1,000,000 views over 500,000 distinct shop
ids through the embedded broker into one worker with the default cache sizes. The worker's RSS
stays under the bound the README states, every view is counted on its shop's local day, and the
figures are printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.devtools.embedded import EmbeddedBroker
from stream.settings import Topics
from tests.support.many_shops import measured

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RSS_BOUND_MB = 300  # README, "Memory"
DEFAULT_BOUND = 100_000  # UPSELL_SHOP_CACHE_ENTRIES
DEFAULT_OFFSETS = 20_000  # UPSELL_SHOP_OFFSETS_PER_PARTITION


@pytest.mark.timeout(2400)
async def test_a_million_views_over_half_a_million_shops_in_bounded_memory(
    broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    figures = await measured(
        broker.bootstrap,
        redis_url,
        created_topics,
        tmp_path,
        shops=500_000,
        views=1_000_000,
        timeout_s=1800,
        sample=200,
        UPSELL_BATCH_MAX_EVENTS="20000",  # the default: batches of up to 20,000 new shops
    )
    caches = dict(figures.caches)
    assert caches.pop("shop_offsets") <= 4 * DEFAULT_OFFSETS, figures.caches
    assert caches and max(caches.values()) <= DEFAULT_BOUND, figures.caches
    assert figures.hwm_mb < RSS_BOUND_MB, figures.line()
