"""The Ingestor's daily per-shop memos, each of at most ``max_entries`` shops (when full it
starts again: a miss costs one idempotent write): the shops listed in us:shops:seen today, and
the shops whose progress TTL this worker refreshed today (later batches leave it out)."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class DailyMemos:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.seen: set[str] = set()  # shops already listed in Redis today (for /v1/shops)
        self.ttl_fresh: set[str] = set()  # shops whose progress TTL was refreshed today
        self.day = 0  # the UTC day (since the epoch) the memos hold

    def start(self, day: int) -> None:
        """On a new UTC day both memos start again (us:shops:seen keeps each shop's last day;
        the progress hashes' TTLs are refreshed once a day)."""
        if day != self.day:
            self.ttl_fresh.clear()
            self.seen.clear()
            self.day = day

    def unseen(self, shops: Iterable[str]) -> list[str]:
        return [shop for shop in shops if shop not in self.seen]

    def saw(self, shops: list[str]) -> None:
        _remember(self.seen, shops, self.max_entries)

    def refreshed(self, shops: list[str]) -> None:
        _remember(self.ttl_fresh, shops, self.max_entries)

    def sizes(self) -> dict[str, Callable[[], float]]:
        return {"seen_shops": lambda: len(self.seen), "progress_ttl": lambda: len(self.ttl_fresh)}


def _remember(memo: set[str], shops: list[str], limit: int) -> None:
    """Add ``shops`` to a memo of at most ``limit`` entries: when full it starts again."""
    if len(memo) + len(shops) > limit:
        memo.clear()
    if len(shops) <= limit:
        memo.update(shops)
