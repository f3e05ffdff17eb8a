"""The tests' reference aggregator, in the terms of the Redis key layout.

Plain Python over the list of events the test produced, deliberately independent of the
production code: it parses the JSON itself, cuts days with zoneinfo itself, and decides validity
from what the test says it sent (``Sent.valid``), not from the decoder. Only the key *names*
come from the documented layout (stream/state/keys.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from stream.state import keys


@dataclass(frozen=True)
class Sent:
    kind: str  # view | click | upgrade | downgrade
    key: bytes | None
    value: bytes
    valid: bool = True


class ExpectedState:
    def __init__(self, timezones: dict[str, str]) -> None:
        self.timezones = timezones
        self.hashes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.upgraders: dict[str, set[str]] = defaultdict(set)
        self.ledger: dict[str, set[str]] = defaultdict(set)
        self._seen: set[tuple[str, str, str]] = set()
        self.counted = 0

    def add_all(self, sent: list[Sent]) -> ExpectedState:
        for item in sent:
            if item.valid:
                self.add(item.kind, json.loads(item.value))
        return self

    def _day(self, shop: str, occurred_at: str) -> str:
        tz = ZoneInfo(self.timezones.get(shop, "UTC"))
        instant = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
        return instant.astimezone(tz).date().isoformat()

    def _inc(self, key: str, field: str, delta: int) -> None:
        if delta:
            self.hashes[key][field] += delta

    def _spread(self, shop: str, day: str, group: str, variation: str, metric: str, d: int) -> None:
        self._inc(f"us:{{{shop}}}:day:{day}", metric, d)
        self._inc(f"us:{{{shop}}}:grp:{day}", f"{metric}\x1f{group}", d)
        self._inc(f"us:{{{shop}}}:var:{day}:{group}", f"{metric}\x1f{variation}", d)

    def add(self, kind: str, e: dict[str, object]) -> None:
        shop = str(e["shop_id"])
        day = self._day(shop, str(e["occurred_at"]))
        if kind in ("view", "click"):
            self._spread(
                shop,
                day,
                str(e["group_id"]),
                str(e["variation_id"]),
                "v" if kind == "view" else "c",
                1,
            )
            self.counted += 1
            return
        marker = (shop, kind, str(e["event_id"]))
        if marker in self._seen:
            return
        self._seen.add(marker)
        self.counted += 1
        group = str(e.get("group_id") or keys.UNATTRIBUTED_GROUP)
        variation = str(e.get("variation_id") or keys.UNATTRIBUTED_VARIATION)
        src, dst = e["from"], e["to"]
        assert isinstance(src, dict) and isinstance(dst, dict)
        cur = str(e["currency"])
        mrr = int(dst["mrr_minor"]) - int(src["mrr_minor"])
        trn = f"us:{{{shop}}}:trn:{day}:{group}"
        tid = json.dumps(
            [variation, src["selling_plan_id"], dst["selling_plan_id"]],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        if kind == "upgrade":
            revenue = int(e["revenue_minor"])  # type: ignore[call-overload]
            for metric, d in (("u", 1), (f"r:{cur}", revenue), (f"e:{cur}", mrr)):
                self._spread(shop, day, group, variation, metric, d)
            for metric, d in (("u", 1), (f"r:{cur}", revenue), (f"n:{cur}", mrr)):
                self._inc(trn, f"{metric}\x1f{tid}", d)
            self.upgraders[f"us:{{{shop}}}:hll:{day}"].add(str(e["subscriber_id"]))
            self.ledger[f"us:{{{shop}}}:ledger"].add(str(e["event_id"]))
        else:
            for metric, d in (("d", 1), (f"x:{cur}", -mrr)):
                self._spread(shop, day, group, variation, metric, d)
            for metric, d in (("d", 1), (f"n:{cur}", mrr)):
                self._inc(trn, f"{metric}\x1f{tid}", d)

    def counters(self) -> dict[str, dict[str, int]]:
        return {
            k: {f: v for f, v in fs.items() if v}
            for k, fs in self.hashes.items()
            if any(fs.values())
        }

    def upgrader_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.upgraders.items()}

    def ledger_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.ledger.items()}
