"""``upsell.banner-views``: high volume; pre-aggregated per (day, group, variation) cell.

A view with a ``subscriber_id`` is also a candidate exposure of that subscriber to the group's
experiment (the first one wins, in the apply script); a view without one counts in the views
and in ``a`` (views left out of experiments), never in an experiment."""

from __future__ import annotations

from schemas.models import BannerView, Kind
from stream.state import keys
from stream.state.batch import ShopSection

KIND = Kind.VIEW


def count(section: ShopSection, event: BannerView, day: str) -> None:
    group, variation = event.group_id, event.variation_id
    section.cells[(keys.VIEWS, day, group, variation)] += 1
    if event.subscriber_id is None:
        section.cells[(keys.ANONYMOUS_VIEWS, day, group, variation)] += 1
    else:
        section.expose(group, event.subscriber_id, variation, day)
