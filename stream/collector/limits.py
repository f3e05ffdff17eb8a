"""Token-bucket rate limits per write key and per client address, in bounded memory.

Each limiter keeps at most ``max_entries`` buckets, least recently used first out: a client
whose bucket was evicted starts again with a full bucket, so memory stays bounded however many
addresses call, at the price of one extra burst for a client unseen for that long.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_entries: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_entries = max_entries
        self._now = monotonic
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, who: str, cost: int) -> float:
        """Take ``cost`` tokens from ``who``'s bucket: 0.0 when allowed, else the seconds until
        the bucket holds enough (nothing is taken then)."""
        now = self._now()
        bucket = self._buckets.get(who)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[who] = bucket
            if len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(who)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate


def retry_after(wait_s: float) -> str:
    """The ``Retry-After`` header: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
