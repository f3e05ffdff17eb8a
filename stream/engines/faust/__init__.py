"""The Faust engine (``UPSELL_ENGINE=faust``): the counted topics through Faust agents into the
same Ingestor.

- ``agents.py``: :class:`FaustCounting`, the counting agent, its claims on assignment and its
  checks every second (:func:`build` registers them on the worker's Faust app);
- ``claims.py``: the takeover: Faust reads an owned partition from the Redis checkpoint only;
- ``repair.py``: Redis that went back in time, read again beside Faust;
- ``unreadable.py``: batches no client can read, dead-lettered and skipped;
- ``tuning.py``: contained adjustments of Faust internals (a quiet Monitor).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from stream.engines.engine import Engine
from stream.engines.faust.agents import FaustCounting
from stream.engines.faust.tuning import configure_faust
from stream.ingest.ingestor import Ingestor
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.telemetry import Telemetry


def build(
    app: faust.App,
    settings: Settings,
    *,
    ingestor: Ingestor,
    telemetry: Telemetry,
    health: StoreHealth,
    ready_to_count: asyncio.Event,
) -> Engine:
    """The Faust engine: one counting agent per counted topic, its rebalance hooks and its checks
    every second, registered on ``app`` (Faust starts and stops them with the worker)."""
    configure_faust(app, settings)
    engine = FaustCounting(
        app,
        settings=settings,
        ingestor=ingestor,
        telemetry=telemetry,
        health=health,
        ready_to_count=ready_to_count,
    )
    for topic in settings.topics.counted:
        channel = app.topic(
            topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        app.agent(channel, name=f"count-{topic.rsplit('.', 1)[-1]}")(engine.agent())
    signals: Any = app  # mode's Signal.connect is typed for a narrower receiver signature
    signals.on_partitions_assigned.connect(engine.on_assigned)
    signals.on_partitions_revoked.connect(engine.on_revoked)
    engine.install()
    app.timer(1.0, name="check-log-ends")(engine.check_log_ends)
    app.timer(1.0, name="check-rewinds")(engine.check_rewinds)
    app.timer(1.0, name="check-commits")(engine.check_commits)
    return engine
