"""Contained adjustments of Faust internals for the counting agents, each with its reason.

- Faust hard-codes ``fetch_max_wait_ms=1500`` on its consumer; on a quiet topic an event then
  waits up to ~0.7 s on the broker (FACTS.md). We want ~100 ms: freshness is a product promise.
  Only Tansu needs this: it does not answer a waiting fetch when data arrives (re-measured
  2026-12-07, one record every 0.3 s: 304-509 ms with a 1,500 ms wait, 8-45 ms with 100 ms);
  Apache Kafka 4.1 answers at once (24-177 ms with 1,500 ms, on a machine at load 28).
- Faust reads ``read_uncommitted`` unless it runs its own transactions; every consumer of ours
  reads ``read_committed`` (aborted writes of a transactional producer are never counted).
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
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream.kafka.clients import ISOLATION_LEVEL
from stream.settings import Settings

_PATCHED_ATTR = "_upsell_fetch_wait_ms"


def configure_faust(app: faust.App, settings: Settings) -> None:
    """The adjustments below, for the worker's app."""
    set_fetch_max_wait_ms(settings.fetch_max_wait_ms)
    conf: Any = app.conf
    conf.Monitor = QuietMonitor


def set_fetch_max_wait_ms(wait_ms: int) -> None:
    """Make Faust's worker consumer use ``wait_ms`` instead of its hard-coded 1500 ms."""
    thread_cls: Any = faust_aiokafka.AIOKafkaConsumerThread
    setattr(thread_cls, _PATCHED_ATTR, wait_ms)
    if getattr(thread_cls, "_upsell_original_create", None) is not None:
        return
    original = thread_cls._create_worker_consumer
    thread_cls._upsell_original_create = original

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = getattr(type(self), _PATCHED_ATTR)
        consumer._isolation_level = ISOLATION_LEVEL  # read before start() builds its fetcher
        return consumer

    thread_cls._create_worker_consumer = create_worker_consumer


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
