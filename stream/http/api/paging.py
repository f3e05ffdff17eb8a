"""Paging parameters of the list endpoints (contract §4): ``limit`` and the opaque ``cursor``
that a page's ``next_cursor`` hands back (the conversions ledger's and the shop list's)."""

from __future__ import annotations

import base64

import orjson

from schemas.fields import valid_shop_id
from stream.http.api.errors import ApiError, bad_request

SHOPS_PAGE, SHOPS_PAGE_MAX = 100, 1000  # GET /v1/shops: default and largest limit
LEDGER_PAGE, LEDGER_PAGE_MAX = 50, 500  # GET .../conversions


def limit(raw: str | None, default: int, most: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise bad_request("bad_limit", f"limit must be an integer from 1 to {most}", "limit")
    return int(raw)


def encode_ledger(cursor: tuple[int, str]) -> str:
    return _encode(orjson.dumps(list(cursor)))


def decode_ledger(raw: str | None) -> tuple[int, str] | None:
    if not raw:
        return None
    try:
        score, member = orjson.loads(_decode(raw))
        if type(score) is not int or type(member) is not str:
            raise ValueError
        return score, member
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise _bad_cursor() from None


def encode_shop(shop_id: str) -> str:
    return _encode(shop_id.encode())


def decode_shop(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        shop = _decode(raw).decode()
    except ValueError:  # also UnicodeDecodeError
        raise _bad_cursor() from None
    if not valid_shop_id(shop):
        raise _bad_cursor()
    return shop


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bad_cursor() -> ApiError:
    return ApiError(400, "bad_cursor", "cursor is not one this API returned", "cursor")
