"""Noticing that a partition's log restarted below what we already counted.

A broker that keeps no data (the embedded one) or a deleted and recreated topic starts a
partition again at offset 0 while our checkpoint in Redis says, say, 3000. Real Kafka answers a
fetch past its log end with ``OffsetOutOfRange``; Tansu answers it with an empty batch and a high
watermark below the position. Both count as "past the end" here, but only once the state has
lasted ``grace_s`` (a broker that is still starting may answer so briefly), and only while
nothing arrives for that partition. Then the partition is a new log, counted from offset 0 in a
new epoch (see ``Ingestor.restart_log``).

The fetch response's high watermark is the signal, not ``end_offsets()``: measured on Tansu while
producing 200k events, the fetch high watermark never fell behind the records it returned, while
``ListOffsets`` lagged up to 147 offsets behind them.

Pure logic with an injectable clock; the engine feeds it positions and high watermarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class LogEndWatch:
    grace_s: float = 3.0
    clock: Callable[[], float] = time.monotonic
    _next: dict[Hashable, int] = field(default_factory=dict)
    _past_end_since: dict[Hashable, float] = field(default_factory=dict)

    def positioned(self, tp: Hashable, offset: int) -> None:
        """The consumer will read ``tp`` from ``offset`` next (a seek, or records consumed)."""
        self._next[tp] = offset
        self._past_end_since.pop(tp, None)

    def forget(self, tp: Hashable) -> None:
        self._next.pop(tp, None)
        self._past_end_since.pop(tp, None)

    def next_offset(self, tp: Hashable) -> int | None:
        return self._next.get(tp)

    def high_watermark(self, tp: Hashable, high: int | None) -> bool:
        """Feed the latest fetch high watermark; True when ``tp``'s log restarted."""
        position = self._next.get(tp)
        if high is None or position is None or position <= high:
            self._past_end_since.pop(tp, None)
            return False
        return self._past_end(tp)

    def out_of_range(self, tp: Hashable) -> bool:
        """The broker said the position is past its log end; True when the log restarted."""
        return self._past_end(tp)

    def _past_end(self, tp: Hashable) -> bool:
        now = self.clock()
        since = self._past_end_since.setdefault(tp, now)
        return now - since >= self.grace_s
