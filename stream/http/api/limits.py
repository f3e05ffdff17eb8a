"""Bounds on the work one query may ask for (contract §4): the days a period (or its compare)
may span, and how many heavy queries one worker runs at once; one more is refused with 503 and
``Retry-After`` rather than queued behind the others."""

from __future__ import annotations

from stream.http.api.errors import ApiError

HEAVY_QUERY_DAYS = 31  # a query reading more days than this (period + compare) is heavy
RETRY_AFTER_S = 1


class HeavyQueries:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0

    def enter(self, days: int) -> bool:
        """Take a slot for a query over ``days`` days if it is heavy; True when one was taken
        (the caller must :meth:`leave`). Raises the 503 when every slot is taken."""
        if days <= HEAVY_QUERY_DAYS:
            return False
        if self.running >= self.limit:
            raise ApiError(
                503,
                "busy",
                f"{self.limit} queries over more than {HEAVY_QUERY_DAYS} days are running; "
                "retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.running += 1
        return True

    def leave(self) -> None:
        self.running -= 1
