"""JSON or CSV: which one a request asks for, and the response for either (contract §4.3)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

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
    """``Content-Disposition`` for ``name`` (RFC 6266): ``filename`` with every character but
    ``[A-Za-z0-9._-]`` replaced by ``_`` (a group id with ``%0a`` made aiohttp raise on the
    header, one with ``";`` added a second filename), and the name itself, percent-encoded, in
    ``filename*``."""
    plain = _UNSAFE.sub("_", name)
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return {"Content-Disposition": f"attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"}


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


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
