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
        # experiments: (shop, group, subscriber) -> [variation, day, crossed] of the first view
        # with a subscriber_id (in the order sent: one shop's views share a partition), and
        # what the subscriber did in the group: converted, downgraded, revenue per currency
        self.exposures: dict[tuple[str, str, str], list[object]] = {}
        self.did: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))

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
            group, variation = str(e["group_id"]), str(e["variation_id"])
            self._spread(shop, day, group, variation, "v" if kind == "view" else "c", 1)
            if kind == "view":
                self._exposure(shop, day, group, variation, e.get("subscriber_id"))
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
        if e.get("group_id") is not None:
            did = self.did[(shop, group, str(e["subscriber_id"]))]
            did["k" if kind == "upgrade" else "g"] = 1
            if kind == "upgrade":
                did[f"r:{cur}"] += int(e["revenue_minor"])  # type: ignore[call-overload]
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

    def _exposure(
        self, shop: str, day: str, group: str, variation: str, subscriber: object
    ) -> None:
        if subscriber is None:  # counted per variation only
            self._inc(f"us:{{{shop}}}:var:{day}:{group}", f"a\x1f{variation}", 1)
            return
        first = self.exposures.setdefault((shop, group, str(subscriber)), [variation, day, False])
        if first[0] != variation:
            first[2] = True

    def _experiments(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (shop, group, subscriber), (variation, day, crossed) in self.exposures.items():
            xp = out[f"us:{{{shop}}}:xp:{day}:{group}"]
            xp[f"s\x1f{variation}"] += 1
            xp[f"m\x1f{variation}"] += int(bool(crossed))
            for name, value in self.did.get((shop, group, subscriber), {}).items():
                if name in ("k", "g"):
                    xp[f"{name}\x1f{variation}"] += value
                else:
                    xp[f"{name}\x1f{variation}"] += value
                    xp[f"q:{name[2:]}\x1f{variation}"] += value * value
        return out

    def counters(self) -> dict[str, dict[str, int]]:
        hashes = {**self.hashes, **self._experiments()}
        return {
            k: {f: v for f, v in fs.items() if v} for k, fs in hashes.items() if any(fs.values())
        }

    def upgrader_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.upgraders.items()}

    def ledger_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.ledger.items()}
