"""``upsell.banner-views``: high volume; pre-aggregated per (day, group, variation) cell."""

from __future__ import annotations

from schemas.models import BannerView, Kind
from stream.state import keys
from stream.state.batch import ShopSection

KIND = Kind.VIEW


def count(section: ShopSection, event: BannerView, day: str) -> None:
    section.cells[(keys.VIEWS, day, event.group_id, event.variation_id)] += 1
