"""How each kind of event counts: one module per counted topic, each a pure function of one
event into its shop's section. The settings-like topics (shop settings, subscriber counts) are
not counted: their Faust agents are services (stream/services/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consumers import clicks, downgrades, upgrades, views
from schemas.models import Kind
from stream.settings import Topics
from stream.state.batch import ShopSection

# How one decoded event counts into its shop's section, on its shop-local day: the one type of
# a counting function (the Ingestor's routes, stream.ingest.types.Routes, are built from it).
Count = Callable[[ShopSection, Any, str], None]
COUNTED = (views, clicks, upgrades, downgrades)  # the counted kinds, one module each


def counting_routes(topics: Topics) -> dict[str, tuple[Kind, Count]]:
    """The counted topics and how each one's events count, for the Ingestor."""
    return {topics.of(kind.KIND): (kind.KIND, kind.count) for kind in COUNTED}
