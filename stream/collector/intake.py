"""``POST /v1/collect`` without HTTP: authorise a key, limit, validate, dedupe, produce.

The order matters for the guarantees in docs/contract.md, section 6: claims of event ids are
taken before producing and released for every record the broker did not acknowledge, so a
request answered 503 can be retried as is: what was acknowledged is not produced twice, what
was not is produced by the retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.collector.dedupe import Deduper
from stream.collector.errors import CollectError
from stream.collector.limits import RateLimiter, retry_after
from stream.collector.producer import BrokerUnavailable, EventProducer
from stream.collector.request_body import Prepared, Record, parse_body, prepare
from stream.collector.telemetry import CollectorTelemetry
from stream.collector.write_keys import KeyKind, KeyRegistry, WriteKey
from stream.dates.clock import Clock
from stream.settings import Topics


@dataclass(frozen=True, slots=True)
class Limits:
    per_key: RateLimiter
    per_address: RateLimiter


class Intake:
    def __init__(
        self,
        *,
        keys: KeyRegistry,
        limits: Limits,
        deduper: Deduper,
        producer: EventProducer,
        telemetry: CollectorTelemetry,
        topics: Topics,
        retention_days: int,
        clock: Clock,
    ) -> None:
        self.keys = keys
        self._limits = limits
        self._deduper = deduper
        self._producer = producer
        self._telemetry = telemetry
        self._topics = topics
        self._retention_days = retention_days
        self._clock = clock

    async def authorise(self, key_text: str | None, origin: str | None) -> WriteKey:
        if not key_text:
            raise CollectError(401, "unauthorized", "a write key is required (?key= or Bearer)")
        key = await self.keys.lookup(key_text)
        if key is None:
            raise CollectError(401, "unauthorized", "unknown or revoked write key")
        if not key.allows_origin(origin):
            raise CollectError(403, "origin_not_allowed", "this key may not send from this origin")
        return key

    async def collect(self, key: WriteKey, address: str, body: bytes) -> dict[str, object]:
        """The 202 body; raises :class:`CollectError` for every other answer."""
        parsed = parse_body(body)
        events, sent_at = parsed.events, parsed.sent_at
        if key.consent_required and not parsed.consent:
            raise CollectError(
                403, "consent_required", 'this shop counts only with consent ("consent": true)'
            )
        self._take_tokens(key, address, len(events))
        prepared = prepare(events, key, self._topics, self._clock(), sent_at, self._retention_days)
        rejected = self._count_rejected(prepared)
        if not prepared.records:
            raise CollectError(400, "all_rejected", "no event is valid", rejected=rejected)
        duplicates = await self._produce_new(prepared.records)
        return {
            "accepted": len(prepared.records),
            "duplicates": duplicates,
            "rejected": rejected,
        }

    def _take_tokens(self, key: WriteKey, address: str, cost: int) -> None:
        """The key's bucket, and for a public key the client address's too: a secret key sends
        from a server that may send for many shops, and shared the browsers' 200 events/s."""
        limits = [("key", self._limits.per_key, key.key_id)]
        if key.kind is KeyKind.PUBLIC:
            limits.insert(0, ("address", self._limits.per_address, address))
        for name, limiter, who in limits:
            wait_s = limiter.take(who, cost)
            if wait_s:
                self._telemetry.rate_limited.labels(name).inc()
                raise CollectError(
                    429,
                    "rate_limited",
                    f"too many events for this {name}; retry later",
                    headers={"Retry-After": retry_after(wait_s)},
                )

    def _count_rejected(self, prepared: Prepared) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for index, kind, reason in prepared.rejected:
            self._telemetry.rejected.labels(kind, reason.split(":", 1)[0]).inc()
            out.append({"index": index, "reason": reason})
        return out

    async def _produce_new(self, records: list[Record]) -> int:
        """Produce the records whose ids were not accepted before; returns the duplicates."""
        dedupable = [r for r in records if r.event_id is not None]
        claims = await self._deduper.claim([(r.shop_id, str(r.event_id)) for r in dedupable])
        seen = {r.index for r, claimed in zip(dedupable, claims, strict=True) if not claimed}
        fresh = [r for r in records if r.index not in seen]
        try:
            await self._producer.send_all(fresh)
        except BrokerUnavailable as exc:
            unacked = [r for r in fresh if r.index not in exc.acked and r.event_id is not None]
            await self._deduper.release([(r.shop_id, str(r.event_id)) for r in unacked])
            raise CollectError(
                503,
                "unavailable",
                f"the broker did not acknowledge: {exc}; retry",
                headers={"Retry-After": "1"},
            ) from exc
        for r in records:
            self._telemetry.accepted.labels(
                r.kind, "duplicate" if r.index in seen else "produced"
            ).inc()
        return len(seen)
