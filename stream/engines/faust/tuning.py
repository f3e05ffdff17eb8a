"""Contained adjustments of Faust internals for the Faust engine's counting agents, each with its
reason (Faust's clients, for every engine, are :mod:`stream.kafka.faust_clients`).

- Faust's Monitor sensor does bookkeeping per message and per stream event; it is a measured
  share of the per-event cost. :class:`QuietMonitor` keeps the sensor API but drops the per-event
  work (our own Prometheus metrics cover throughput, lag and freshness).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.sensors.monitor import Monitor

from stream.settings import Settings


def configure_faust(app: faust.App, settings: Settings) -> None:
    """The adjustments below, for the worker's app (the fetch wait and read_committed are
    set for both engines by stream/app.py: stream/kafka/faust_clients.py)."""
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
