"""The worker's decoder: a typed fast path for well-formed views and clicks, the contract's
validator (:func:`schemas.decode.check`) for everything else.

A :class:`Decoder` owns its caches (shop ids already found valid, parsed timestamps); the caller
passes each batch's :class:`TimeBounds` in. The fast path decodes a view or click straight into a
msgspec ``Struct`` whose fields carry the contract's types and lengths and which forbids unknown
fields, so a document it accepts is one ``orjson`` accepts as well and the validator would turn
into the same event. Anything it does not accept (an extra field, a bad value, a new shop id, a
timestamp off the canonical shape, a key or time it cannot vouch for) goes through the validator,
which names the reason: reason codes and events are the validator's in every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import msgspec

from schemas.decode import FUTURE_TOLERANCE, MAX_BYTES, check
from schemas.fields import MAX_ID, valid_shop_id
from schemas.models import BannerClick, BannerView, Event, Kind, Rejected
from schemas.timestamps import canonical_utc, parse_timestamp

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
_Stamp = Annotated[str, msgspec.Meta(max_length=40)]
_MAX_SHOPS = 100_000  # valid shop ids remembered by default (cleared when full)
_MAX_STAMPS = 65_536  # parsed timestamps remembered (cleared when full)


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The accepted ``occurred_at`` range of one batch: ``oldest <= occurred_at <= latest``."""

    latest: datetime
    oldest: datetime
    retention_days: int

    @classmethod
    def at(cls, now: datetime, retention_days: int) -> TimeBounds:
        return cls(now + FUTURE_TOLERANCE, now - timedelta(days=retention_days), retention_days)


class _Wire(msgspec.Struct, forbid_unknown_fields=True):
    """A view or click as sent: a click needs ``subscriber_id`` (checked after decoding)."""

    event_id: _Id
    shop_id: _Id
    occurred_at: _Stamp
    group_id: _Id
    variation_id: _Id
    subscriber_id: _Id | None = None


_WIRE = msgspec.json.Decoder(_Wire)
_VIEW, _CLICK = Kind.VIEW, Kind.CLICK  # an Enum member lookup costs ~0.4 us per event


class Decoder:
    """Bytes from Kafka to a valid event or the contract's reason; never raises. One per worker
    (its caches are its own); not shared between threads."""

    def __init__(self, max_shops: int = _MAX_SHOPS) -> None:
        self.max_shops = max_shops
        self._shops: dict[str, bytes] = {}  # valid shop id -> its UTF-8 bytes (the expected key)
        self._stamps: dict[str, datetime] = {}  # canonical timestamp text -> parsed

    def decode(
        self, kind: Kind, key: bytes | None, raw: bytes | None, bounds: TimeBounds
    ) -> Event | Rejected:
        if (kind is not _VIEW and kind is not _CLICK) or raw is None or len(raw) > MAX_BYTES:
            return check(kind, key, raw, bounds.latest, bounds.oldest, bounds.retention_days)
        try:
            wire = _WIRE.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            return check(kind, key, raw, bounds.latest, bounds.oldest, bounds.retention_days)
        shop = wire.shop_id
        expected_key = self._shops.get(shop) or self._learn_shop(shop)
        occurred = self._stamps.get(wire.occurred_at) or self._parse(wire.occurred_at)
        if (
            expected_key is None
            or occurred is None
            or (key is not None and key != expected_key)
            or occurred > bounds.latest
            or occurred < bounds.oldest
        ):
            return check(kind, key, raw, bounds.latest, bounds.oldest, bounds.retention_days)
        subscriber = wire.subscriber_id
        if kind is _VIEW:
            return BannerView(
                wire.event_id, shop, occurred, wire.group_id, wire.variation_id, subscriber
            )
        if subscriber is None:
            return check(kind, key, raw, bounds.latest, bounds.oldest, bounds.retention_days)
        return BannerClick(
            wire.event_id, shop, occurred, wire.group_id, wire.variation_id, subscriber
        )

    def _learn_shop(self, shop: str) -> bytes | None:
        if not valid_shop_id(shop):
            return None
        if len(self._shops) >= self.max_shops:
            self._shops.clear()
        encoded = self._shops[shop] = shop.encode()
        return encoded

    def __len__(self) -> int:
        """Shop ids remembered."""
        return len(self._shops)

    def _parse(self, text: str) -> datetime | None:
        occurred: datetime | None
        if canonical_utc(text):
            try:
                occurred = datetime.fromisoformat(text)
            except ValueError:  # not a calendar time: the validator names it
                return None
        else:
            occurred = parse_timestamp(text)
            if occurred is None:
                return None
        if len(self._stamps) >= _MAX_STAMPS:
            self._stamps.clear()
        self._stamps[text] = occurred
        return occurred
