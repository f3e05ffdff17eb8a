"""In-memory store executing the same apply payloads as apply.lua, for fast unit tests.

It mirrors the script's semantics (fences, conflicts, dedupe, checkpoint); an integration test
runs identical batches through both and compares the resulting data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Any

from schemas.models import ShopSettings
from stream.state import keys, memory_experiments
from stream.state.batch import PartitionBatch
from stream.state.retention import is_expired_key
from stream.state.store import ApplyResult, Claim

# HINCRBY's range: the apply script refuses money entries that would take a counter out of it.
COUNTER_MIN, COUNTER_MAX = -(2**63), 2**63 - 1


class MemoryStore:
    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, Any]] = defaultdict(dict)  # ints; sums may be floats
        self.exposed: dict[str, dict[str, str]] = {}  # subscribers' hashes in experiments
        self.strings: dict[str, str] = {}
        self.hlls: dict[str, set[str]] = defaultdict(set)
        self.zsets: dict[str, dict[str, int]] = defaultdict(dict)
        self.shops: dict[str, ShopSettings] = {}
        self.seen_shops: dict[str, int] = {}  # us:shops:active: shop -> last UTC day seen
        self.subscribers: dict[str, dict[str, int]] = defaultdict(dict)

    async def claim(self, topic: str, partition: int, above: int = 0) -> Claim:
        part = self.hashes[keys.partition(topic, partition)]
        part["gen"] = max(part.get("gen", 0), above) + 1
        offset = part.get("offset")
        return Claim(part["gen"], offset + 1 if offset is not None else 0, part.get("epoch", 0))

    async def checkpoint(self, topic: str, partition: int) -> int:
        return int(self.hashes[keys.partition(topic, partition)].get("offset", -1))

    async def restart_log(self, topic: str, partition: int, generation: int) -> Claim:
        part = self.hashes[keys.partition(topic, partition)]
        if part.get("gen", 0) > generation:
            return Claim(part["gen"], -1, part.get("epoch", 0))
        part["epoch"] = part.get("epoch", 0) + 1
        part.pop("offset", None)
        return Claim(generation, 0, part["epoch"])

    async def apply(self, batch: PartitionBatch) -> ApplyResult:
        return self.execute(batch.payload())

    def execute(self, p: dict[str, Any]) -> ApplyResult:
        refused = self._check(p)
        if refused is not None:
            return refused
        ofield, ffield, gen = f"o:{p['t']}:{p['p']}:{p['e']}", f"f:{p['t']}:{p['p']}", p["g"]
        counted = dups = 0
        for s in p["s"]:
            self._hashes(s["h"])
            for x in s.get("xp", ()):
                memory_experiments.expose(self.hashes, self.exposed, s, x)
            for m in s["$"]:
                if m["s"] in self.strings:
                    dups += 1
                    continue
                counted += 1
                self.strings[m["s"]] = "1"
                self._hashes(m["h"])
                if "hl" in m:
                    self.hlls[m["hl"]].add(m["hm"])
                if "lk" in m:
                    self.zsets[m["lk"]][m["lm"]] = m["ls"]
                if "x" in m:
                    memory_experiments.experiment_money(self.hashes, self.exposed, s, list(m["x"]))
            prog = self.hashes[s["k"]]
            prog.update({ofield: s["l"], ffield: gen})
            if s["le"] > prog.get(keys.LAST_EVENT, 0):
                prog[keys.LAST_EVENT] = s["le"]
        if p["ck"] is not None:
            ck = self.hashes[p["ck"]]
            ck["offset"] = max(ck.get("offset", -1), p["co"])
        return ApplyResult("ok", counted, dups)

    def _check(self, p: dict[str, Any]) -> ApplyResult | None:
        """Phase 1 of the script: the reason nothing is applied, or None."""
        ofield, ffield, gen = f"o:{p['t']}:{p['p']}:{p['e']}", f"f:{p['t']}:{p['p']}", p["g"]
        if p["ck"] is not None:
            ck = self.hashes[p["ck"]]
            epoch = ck.get("epoch", 0)
            if ck.get("gen", 0) > gen or epoch > p["e"]:
                return ApplyResult("fenced")
            if epoch < p["e"] or ck.get("offset", -1) < p["xc"]:
                return ApplyResult("rewound")
        conflicts: dict[str, int] = {}
        rewound: dict[str, int] = {}
        for s in p["s"]:
            prog = self.hashes[s["k"]]
            if prog.get(ffield, -1) > gen:
                return ApplyResult("fenced")
            stored = prog.get(ofield, -1)
            if stored < s["xo"]:
                rewound[s["id"]] = stored
            elif stored >= s["f"]:
                conflicts[s["id"]] = stored
        if rewound:
            return ApplyResult("rewound", rewound=rewound)
        if conflicts:
            return ApplyResult("conflict", conflicts=conflicts)
        overflow = self._overflow(p)
        return ApplyResult("overflow", overflow=overflow) if overflow else None

    def _overflow(self, p: dict[str, Any]) -> list[str]:
        """The money entries whose amounts would take a counter out of HINCRBY's range."""
        totals: dict[tuple[str, str], int] = {}
        marked: set[str] = set()
        out: list[str] = []
        for s in p["s"]:
            for m in s["$"]:
                if m["s"] in marked or m["s"] in self.strings:
                    continue
                marked.add(m["s"])
                after: dict[tuple[str, str], int] = {}
                for key, fields in m["h"]:
                    for i in range(0, len(fields), 2):
                        at = (key, fields[i])
                        now = after.get(at, totals.get(at, self.hashes[key].get(fields[i], 0)))
                        after[at] = now + fields[i + 1]
                if any(not COUNTER_MIN <= v <= COUNTER_MAX for v in after.values()):
                    out.append(m["s"])
                else:
                    totals.update(after)
        return out

    def _hashes(self, ops: list[list[Any]]) -> None:
        for key, fields in ops:
            h = self.hashes[key]
            for i in range(0, len(fields), 2):
                h[fields[i]] = h.get(fields[i], 0) + fields[i + 1]

    async def write_shops(self, changes: Mapping[str, ShopSettings | None]) -> None:
        for shop, settings in changes.items():
            if settings is None:
                self.shops.pop(shop, None)
            else:
                self.shops[shop] = settings
                self.zsets[keys.SHOPS_INDEX].setdefault(shop, 0)

    async def get_shops(self, shop_ids: list[str]) -> dict[str, ShopSettings]:
        return {s: self.shops[s] for s in shop_ids if s in self.shops}

    async def mark_shops_seen(self, shop_ids: list[str], day: int) -> None:
        for shop in shop_ids:
            self.seen_shops[shop] = max(day, self.seen_shops.get(shop, day))
            self.zsets[keys.SHOPS_INDEX].setdefault(shop, 0)

    async def trim_shops(self, today: int, first_kept_day: int) -> int:
        gone = [s for s, day in self.seen_shops.items() if day < first_kept_day]
        for shop in gone:
            del self.seen_shops[shop]
            if shop not in self.shops:
                self.zsets[keys.SHOPS_INDEX].pop(shop, None)
        return len(gone)

    async def put_subscribers(self, shop_id: str, day: date, count: int, ttl_s: int) -> None:
        self.subscribers[shop_id][day.isoformat()] = count

    async def claim_sweep(self, last_day: str, ttl_s: int) -> bool:
        marker = keys.retention_sweep(last_day)
        if marker in self.strings:
            return False
        self.strings[marker] = "1"
        return True

    async def release_sweep(self, last_day: str) -> None:
        self.strings.pop(keys.retention_sweep(last_day), None)

    async def finish_sweep(self, last_day: str) -> None:
        marker = keys.retention_sweep(last_day)
        if marker in self.strings:
            self.strings[marker] = keys.SWEEP_DONE

    async def delete_days_through(self, last_day: str) -> int:
        deleted = 0
        tables: tuple[dict[str, Any], ...] = (self.hashes, self.hlls)
        for table in tables:
            for name in list(table):
                if is_expired_key(name, last_day):
                    del table[name]
                    deleted += 1
        return deleted
