"""How each kind of event counts: one module per topic, each a pure function of one event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consumers import clicks, downgrades, upgrades, views
from schemas.models import Kind
from stream.settings import Topics
from stream.state.batch import ShopSection

Count = Callable[[ShopSection, Any, str], None]
COUNTED = (views, clicks, upgrades, downgrades)  # the counted kinds, one module each


def counting_routes(topics: Topics) -> dict[str, tuple[Kind, Count]]:
    """The counted topics and how each one's events count, for the Ingestor."""
    return {topics.of(kind.KIND): (kind.KIND, kind.count) for kind in COUNTED}
