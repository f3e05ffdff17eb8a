"""How the validator reads one field of an event document: its type, then its rules, the
first failure raised as :class:`Reject` with the contract's reason code (``missing_field:<f>``,
``bad_type:<f>``, ``bad_value:<f>``, ``key_mismatch``). Used by :mod:`schemas.decode`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from schemas.models import Plan
from schemas.timestamps import read_rfc3339

MAX_ID = 128
MAX_PRODUCTS = 100
# The largest amount an event may carry (minor units, and subscriber counts): 10^12. A Redis
# counter (int64) then holds 9.2 million maximal events of one shop, day and field, and every
# amount is exact in a JSON double. Larger values are dead-lettered as ``bad_value:<field>``.
MAX_AMOUNT = 10**12

_SHOP_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class Reject(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail


def get(doc: dict[str, Any], name: str, path: str, required: bool) -> Any:
    value = doc.get(name)
    if value is None and required:
        raise Reject(f"missing_field:{path}{name}")
    return value


def text(doc: dict[str, Any], name: str, path: str = "", required: bool = True) -> str | None:
    value = get(doc, name, path, required)
    if value is None:
        return None
    if type(value) is not str:
        raise Reject(f"bad_type:{path}{name}", "expected a string")
    if not 0 < len(value) <= MAX_ID:
        raise Reject(f"bad_value:{path}{name}", f"length must be 1-{MAX_ID}")
    return value


def required_text(doc: dict[str, Any], name: str, path: str = "") -> str:
    value = text(doc, name, path)
    assert value is not None
    return value


def amount(doc: dict[str, Any], name: str, path: str = "", required: bool = True) -> int | None:
    value = get(doc, name, path, required)
    if value is None:
        return None
    if type(value) is not int:
        raise Reject(f"bad_type:{path}{name}", "expected an integer")
    if not 0 <= value <= MAX_AMOUNT:
        raise Reject(f"bad_value:{path}{name}", f"must be between 0 and {MAX_AMOUNT}")
    return value


def valid_shop_id(value: str) -> bool:
    """Only ``[A-Za-z0-9._:-]``, 1-128 characters."""
    return _SHOP_ID.fullmatch(value) is not None


def shop_id(doc: dict[str, Any]) -> str:
    value = required_text(doc, "shop_id")
    if not valid_shop_id(value):
        raise Reject("bad_value:shop_id", "only [A-Za-z0-9._:-] allowed")
    return value


def timestamp(doc: dict[str, Any], name: str = "occurred_at") -> datetime:
    value = get(doc, name, "", True)
    if type(value) is not str:
        raise Reject(f"bad_type:{name}", "expected an RFC 3339 string")
    try:
        return read_rfc3339(value)
    except ValueError as exc:
        raise Reject(f"bad_value:{name}", str(exc)) from None


def currency(doc: dict[str, Any]) -> str:
    value = get(doc, "currency", "", True)
    if type(value) is not str:
        raise Reject("bad_type:currency", "expected a string")
    if not _CURRENCY.fullmatch(value):
        raise Reject("bad_value:currency", "expected 3 upper-case letters (ISO 4217)")
    return value


def check_key(key: bytes | None, shop_id: str) -> None:
    if key is None:
        return
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("key_mismatch", "the key is not UTF-8") from None
    if text != shop_id:
        raise Reject("key_mismatch", "the message key differs from shop_id")


def attribution(doc: dict[str, Any], required: bool) -> tuple[str | None, str | None]:
    group = text(doc, "group_id", required=required)
    variation = text(doc, "variation_id", required=group is not None)
    if group is None and variation is not None:
        raise Reject("missing_field:group_id", "variation_id needs group_id")
    return group, variation


def plan(doc: dict[str, Any], name: str) -> Plan:
    value = get(doc, name, "", True)
    if not isinstance(value, dict):
        raise Reject(f"bad_type:{name}", "expected an object")
    path = f"{name}."
    products = get(value, "product_ids", path, True)
    if not isinstance(products, list):
        raise Reject(f"bad_type:{path}product_ids", "expected a list of strings")
    if len(products) > MAX_PRODUCTS:
        raise Reject(f"bad_value:{path}product_ids", f"at most {MAX_PRODUCTS} products")
    for p in products:
        if type(p) is not str:
            raise Reject(f"bad_type:{path}product_ids", "expected a list of strings")
        if not 0 < len(p) <= MAX_ID:
            raise Reject(f"bad_value:{path}product_ids", f"ids must be 1-{MAX_ID} chars")
    plan_id = required_text(value, "selling_plan_id", path)
    mrr = amount(value, "mrr_minor", path)
    assert mrr is not None
    return Plan(tuple(products), plan_id, mrr)
