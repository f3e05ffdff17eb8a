"""Contained adjustments of Faust internals for the Faust engine's counting agents, each with its
reason (Faust's clients, for every engine, are :mod:`stream.kafka.faust_clients`).

- Faust's Monitor sensor does bookkeeping per message and per stream event; it is a measured
  share of the per-event cost. :class:`QuietMonitor` keeps the sensor API but drops the per-event
  work (our own Prometheus metrics cover throughput, lag and freshness).
- :func:`faust_highwater` reads the high watermark Faust's consumer last saw (lag metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.sensors.monitor import Monitor
from faust.types import TP

from stream.kafka.faust_clients import set_fetch_max_wait_ms
from stream.settings import Settings


def configure_faust(app: faust.App, settings: Settings) -> None:
    """The adjustments below, for the worker's app."""
    set_fetch_max_wait_ms(settings.fetch_max_wait_ms)
    conf: Any = app.conf
    conf.Monitor = QuietMonitor


class QuietMonitor(Monitor):
    """Faust's Monitor without the per-message and per-event bookkeeping."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        return None


def faust_highwater(app: faust.App) -> Callable[[str, int], int | None]:
    """The high watermark Faust's consumer last saw for a partition (None before one)."""

    def highwater(topic: str, partition: int) -> int | None:
        try:
            high = app.consumer.highwater(TP(topic, partition))
        except Exception:  # no consumer yet, or a partition it does not fetch
            return None
        return int(high) if high is not None else None

    return highwater
