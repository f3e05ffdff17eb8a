"""A shop's settings as Redis stores them: one JSON document per shop in the ``us:shops`` hash
(keys.SHOPS), written by the worker that consumed them, read by every worker and the API.

One writer and one reader, so the counting path and the API read the same document the same
way; a shop without a document counts and reads on the defaults.
"""

from __future__ import annotations

from datetime import date

import orjson

from schemas.models import ExperimentSettings, ShopSettings

DEFAULT_TIMEZONE = "UTC"
DEFAULT_WEEK_START = "monday"


def encode(settings: ShopSettings) -> bytes:
    return orjson.dumps(
        {
            "shop_id": settings.shop_id,
            "timezone": settings.timezone,
            "week_start": settings.week_start,
            "currency": settings.currency,
            "groups": settings.groups,
            "experiments": {
                g: {"start": e.start.isoformat() if e.start else None, "mde": e.mde}
                for g, e in settings.experiments.items()
            },
        }
    )


def decode(shop_id: str, doc: bytes | str) -> ShopSettings:
    """The stored document of ``shop_id``: a time zone always, the week start, currency and
    groups where it has them (documents of older versions may lack them)."""
    d = orjson.loads(doc)
    return ShopSettings(
        shop_id,
        d["timezone"],
        d.get("week_start") or DEFAULT_WEEK_START,
        d.get("currency"),
        d.get("groups") or {},
        {
            g: ExperimentSettings(
                date.fromisoformat(e["start"]) if e.get("start") else None, e.get("mde")
            )
            for g, e in (d.get("experiments") or {}).items()
        },
    )
