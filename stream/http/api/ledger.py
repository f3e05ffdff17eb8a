"""The conversions ledger's items as the API shows them, and its CSV export streamed page by
page (the whole period, bounded memory: one page of ``EXPORT_PAGE`` items at a time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from schemas.zones import zone
from stream.http.api import csv_export, replies
from stream.state.reader import ShopView, StateReader

EXPORT_PAGE = 500


def local_time(occurred_at: str, timezone: str) -> str:
    """``occurred_at`` (UTC) as the shop's wall-clock time with its offset, to the second."""
    instant = datetime.fromisoformat(occurred_at).astimezone(zone(timezone))
    return instant.isoformat(timespec="seconds")


def with_local_time(items: list[dict[str, Any]], shop: ShopView) -> list[dict[str, Any]]:
    for item in items:
        item["local_time"] = local_time(item["occurred_at"], shop.timezone)
    return items


async def stream_csv(
    request: web.Request,
    reader: StateReader,
    shop: ShopView,
    period: dict[str, Any],
    span_ms: tuple[int, int],
) -> web.StreamResponse:
    name = replies.filename({"shop_id": shop.shop_id, "period": period}, "conversions")
    response = web.StreamResponse(headers=replies.csv_headers(name))
    response.content_type = replies.CSV_TYPE
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(csv_export.text([csv_export.CONVERSION_HEADER]).encode())
    after: tuple[int, str] | None = None
    while True:
        items, after = await reader.ledger_page(shop.shop_id, *span_ms, after, EXPORT_PAGE)
        rows = [csv_export.conversion_row(item) for item in with_local_time(items, shop)]
        await response.write(csv_export.text(rows).encode())
        if after is None:
            break
    await response.write_eof()
    return response
