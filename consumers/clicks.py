"""``upsell.banner-clicks``: pre-aggregated per (day, group, variation) cell."""

from __future__ import annotations

from schemas.models import BannerClick, Kind
from stream.state import keys
from stream.state.batch import ShopSection

KIND = Kind.CLICK


def count(section: ShopSection, event: BannerClick, day: str) -> None:
    section.cells[(keys.CLICKS, day, event.group_id, event.variation_id)] += 1
