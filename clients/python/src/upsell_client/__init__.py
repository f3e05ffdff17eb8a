"""A client for upsell-stream's collector, for storefront servers.

    client = Collector("https://collect.example", key="usk_...", shop="my-shop")
    client.upgrade(subscriber="cust-1", order="order-9", revenue_minor=12000, currency="EUR",
                   from_plan=Plan("monthly", 1500), to_plan=Plan("annual", 1250),
                   group="annual-upgrade", variation="save-20")
    client.flush()          # or leave it to the batch size; close() flushes too

Events get an ``event_id`` (a UUID) when they are queued, so a batch sent again after a lost
answer counts once (the collector and the workers deduplicate by id). A batch goes when
``batch_size`` events wait, or on :meth:`Collector.flush`, with ``sent_at`` (the collector
corrects a skewed server clock with it). A ``429`` or ``503`` answer, or no answer at all, is
retried with the same events after the answer's ``Retry-After`` (else 1, 2, 4 ... s) plus up
to 25 % random jitter, so many servers refused at once do not come back at once, up to
``max_tries``; then :class:`Unavailable`. Events the collector rejects are returned by
:meth:`Collector.flush` with their reasons; a refused key or body raises :class:`Refused`.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Collector", "Plan", "Refused", "Rejected", "Unavailable"]
__version__ = "0.1.0"

MAX_BATCH = 100  # the collector's limit per request
RETRIED = frozenset({429, 502, 503, 504})


class Refused(RuntimeError):
    """The collector refused the request (401, 403, 400, 413 ...): retrying will not help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class Unavailable(RuntimeError):
    """The collector did not take the batch after ``max_tries``: send it again later."""


@dataclass(frozen=True, slots=True)
class Plan:
    selling_plan_id: str
    mrr_minor: int
    product_ids: tuple[str, ...] = ()

    def wire(self) -> dict[str, Any]:
        return {
            "product_ids": list(self.product_ids or (self.selling_plan_id,)),
            "selling_plan_id": self.selling_plan_id,
            "mrr_minor": self.mrr_minor,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    event: dict[str, Any]
    reason: str  # the collector's reason code, e.g. missing_field:order_id


Send = Callable[[str, bytes, dict[str, str], float], tuple[int, dict[str, str], bytes]]


def _urllib_send(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return int(answer.status), dict(answer.headers.items()), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers.items()), exc.read()


def _rejected(status: int, raw: bytes, batch: list[dict[str, Any]]) -> list[Rejected] | None:
    """The rejected events of a 202, or of a 400 whose every event was rejected; None for
    another 400 (a bad body: :class:`Refused`)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if status == 400 and doc.get("error", {}).get("code") != "all_rejected":
        return None
    return [Rejected(batch[r["index"]], r["reason"]) for r in doc.get("rejected", [])]


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Collector:
    endpoint: str
    key: str
    shop: str
    batch_size: int = 50
    max_tries: int = 5
    timeout_s: float = 10.0
    max_wait_s: float = 60.0
    send: Send = _urllib_send
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    jitter: Callable[[], float] = random.random  # 0 <= x < 1
    _queue: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size is 1 to {MAX_BATCH}")

    # -- events ----------------------------------------------------------------------------
    def view(self, *, group: str, variation: str, subscriber: str | None = None) -> str:
        return self._add("banner_view", group=group, variation=variation, subscriber=subscriber)

    def click(self, *, group: str, variation: str, subscriber: str) -> str:
        return self._add("banner_click", group=group, variation=variation, subscriber=subscriber)

    def upgrade(self, **change: Any) -> str:
        """``subscriber``, ``order``, ``revenue_minor``, ``currency``, ``from_plan``,
        ``to_plan`` (:class:`Plan`), optional ``group`` and ``variation``."""
        return self._plan_change("upgrade", **change)

    def downgrade(self, **change: Any) -> str:
        return self._plan_change("downgrade", **change)

    def _plan_change(
        self,
        kind: str,
        *,
        subscriber: str,
        order: str,
        revenue_minor: int,
        currency: str,
        from_plan: Plan,
        to_plan: Plan,
        group: str | None = None,
        variation: str | None = None,
        occurred_at: datetime | None = None,
    ) -> str:
        extra = {
            "order_id": order,
            "revenue_minor": revenue_minor,
            "currency": currency,
            "from": from_plan.wire(),
            "to": to_plan.wire(),
        }
        return self._add(
            kind,
            group=group,
            variation=variation,
            subscriber=subscriber,
            occurred_at=occurred_at,
            **extra,
        )

    def _add(
        self,
        kind: str,
        *,
        group: str | None,
        variation: str | None,
        subscriber: str | None,
        occurred_at: datetime | None = None,
        **extra: Any,
    ) -> str:
        event: dict[str, Any] = {
            "kind": kind,
            "event_id": str(uuid.uuid4()),
            "shop_id": self.shop,
            "occurred_at": _utc_text(occurred_at or self.now()),
        }
        for name, value in (
            ("group_id", group),
            ("variation_id", variation),
            ("subscriber_id", subscriber),
        ):
            if value is not None:
                event[name] = value
        event.update(extra)
        self._queue.append(event)
        if len(self._queue) >= self.batch_size:
            self.flush()
        return str(event["event_id"])

    # -- sending ---------------------------------------------------------------------------
    def flush(self) -> list[Rejected]:
        """Send everything queued; the events the collector rejected, with their reasons."""
        rejected: list[Rejected] = []
        while self._queue:
            batch = self._queue[: self.batch_size]
            rejected += self._send_batch(batch)
            del self._queue[: len(batch)]
        return rejected

    def close(self) -> list[Rejected]:
        return self.flush()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.flush()

    def _send_batch(self, batch: list[dict[str, Any]]) -> list[Rejected]:
        url = self.endpoint.rstrip("/") + "/v1/collect"
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        last = "no answer"
        for attempt in range(self.max_tries):
            body = json.dumps({"events": batch, "sent_at": _utc_text(self.now())}).encode()
            try:
                status, answer_headers, raw = self.send(url, body, headers, self.timeout_s)
            except OSError as exc:  # no connection, a timeout: the same batch again
                status, answer_headers, raw, last = 0, {}, b"", str(exc)
            if 200 <= status < 300 or status == 400:
                rejected = _rejected(status, raw, batch)
                if rejected is not None:
                    return rejected
            if status and status not in RETRIED:
                self._refuse(status, raw)
            if status:
                last = f"{status}"
            if attempt + 1 < self.max_tries:
                self.sleep(self._wait_s(attempt, answer_headers))
        raise Unavailable(f"the collector did not take {len(batch)} events: {last}")

    def _wait_s(self, attempt: int, headers: dict[str, str]) -> float:
        """``Retry-After`` seconds (else 1, 2, 4 ...), capped, plus up to 25 % jitter."""
        raw = {k.lower(): v for k, v in headers.items()}.get("retry-after", "")
        base = float(raw) if raw.strip().isdigit() else float(2**attempt)
        base = min(base, self.max_wait_s)
        return base * (1 + 0.25 * self.jitter())

    @staticmethod
    def _refuse(status: int, raw: bytes) -> None:
        try:
            doc = json.loads(raw)
            error = doc["error"]
            rejected = doc.get("rejected") or []
        except (ValueError, KeyError, TypeError):
            raise Refused(status, "unknown", raw[:200].decode(errors="replace")) from None
        detail = f" ({rejected[0]['reason']} in event {rejected[0]['index']})" if rejected else ""
        raise Refused(status, error.get("code", "?"), error.get("message", "") + detail)
