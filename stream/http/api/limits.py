"""Bounds on the work one query may ask for (contract §4): the days a period (or its compare)
may span, how many heavy queries one process runs at once (one more is refused with 503 and
``Retry-After`` rather than queued behind the others), and each token's fair share of a process:
requests in flight, heavy-query slots and live streams (one more is 429 with ``Retry-After``
while other tokens are served).

Every cap is checked and taken in one step, with no ``await`` between, so concurrent requests
cannot all pass the check before any takes its slot: the live-stream check used to await the
first documents between checking and counting, and 40 simultaneous streams passed a cap of 5.
"""

from __future__ import annotations

from collections.abc import Mapping

from stream.http.api.errors import ApiError

HEAVY_QUERY_DAYS = 31  # a query reading more days than this (period + compare) is heavy
RETRY_AFTER_S = 1

REQUESTS, HEAVY, STREAMS = "requests", "heavy queries", "live streams"


class Shares:
    """What each token holds now of every kind, against its limit. A token of None (auth off)
    has no share of its own: only the process-wide caps apply."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._held: dict[tuple[str, str], int] = {}

    def held(self, kind: str, token: str | None) -> int:
        return 0 if token is None else self._held.get((kind, token), 0)

    def check(self, kind: str, token: str | None) -> None:
        """Raise the 429 if ``token`` holds its whole share of ``kind``."""
        if token is not None and self.held(kind, token) >= self.limits[kind]:
            raise ApiError(
                429,
                "too_many_requests",
                f"this token holds its {self.limits[kind]} {kind}; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    def take(self, kind: str, token: str | None) -> None:
        """Check and take one of ``kind`` for ``token`` (the caller must :meth:`give` it)."""
        self.check(kind, token)
        if token is not None:
            self._held[(kind, token)] = self.held(kind, token) + 1

    def give(self, kind: str, token: str | None) -> None:
        if token is None:
            return
        left = self.held(kind, token) - 1
        if left > 0:
            self._held[(kind, token)] = left
        else:
            self._held.pop((kind, token), None)


class HeavyQueries:
    def __init__(self, limit: int, shares: Shares | None = None) -> None:
        self.limit = limit
        self.running = 0
        self.shares = shares or Shares({HEAVY: limit})

    def enter(self, days: int, token: str | None = None) -> bool:
        """Take a slot for a query over ``days`` days if it is heavy; True when one was taken
        (the caller must :meth:`leave`). Raises the 429 when ``token`` holds its share, the 503
        when every slot of the process is taken."""
        if days <= HEAVY_QUERY_DAYS:
            return False
        self.shares.check(HEAVY, token)
        if self.running >= self.limit:
            raise ApiError(
                503,
                "busy",
                f"{self.limit} queries over more than {HEAVY_QUERY_DAYS} days are running; "
                "retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.shares.take(HEAVY, token)
        self.running += 1
        return True

    def leave(self, token: str | None = None) -> None:
        self.running -= 1
        self.shares.give(HEAVY, token)
