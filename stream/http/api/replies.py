"""JSON or CSV: which one a request asks for, and the response for either (contract §4.3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from stream.http.api import csv_export
from stream.http.api.errors import bad_request

CSV_TYPE = "text/csv"


def wants_csv(request: web.Request) -> bool:
    """``?format=csv`` or ``Accept: text/csv`` (``?format=json`` wins over the header)."""
    fmt = request.query.get("format") or ""
    if fmt not in ("", "json", "csv"):
        raise bad_request("bad_format", "format must be json or csv", "format")
    if fmt:
        return fmt == "csv"
    return CSV_TYPE in request.headers.get("Accept", "")


def filename(doc: dict[str, Any], name: str) -> str:
    period = doc["period"]
    return f"{doc['shop_id']}-{name}-{period['from']}-{period['to']}.csv"


def csv_headers(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def reply(
    request: web.Request, doc: dict[str, Any], name: str, rows: Iterable[csv_export.Row]
) -> web.Response:
    """``doc`` as JSON, or ``rows`` as CSV when the request asks for CSV."""
    if wants_csv(request):
        return web.Response(
            text=csv_export.text(rows),
            content_type=CSV_TYPE,
            charset="utf-8",
            headers=csv_headers(filename(doc, name)),
        )
    return web.json_response(doc, dumps=dumps)


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
