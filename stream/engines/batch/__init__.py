"""The batch engine (``UPSELL_ENGINE=batch``, the default): aiokafka ``getmany`` batches of the
counted topics into the Ingestor, one atomic apply per partition batch.

- ``loop.py``: :class:`BatchEngine`, the consumer's loop and its rebalance listener;
- ``pipeline.py``: applies kept in flight while the next round is fetched and decoded;
- ``positions.py``: where each partition reads next, and every seek away from the next fetch;
- ``offset_commits.py``: offsets committed to Kafka, for lag visibility only.
"""

from __future__ import annotations

import asyncio

import faust

from stream.engines.batch.loop import BatchEngine
from stream.engines.engine import Engine
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
    """The batch engine, hosted by ``app`` (Faust starts and stops it with the worker)."""
    engine = BatchEngine(
        settings=settings,
        ingestor=ingestor,
        telemetry=telemetry,
        health=health,
        ready_to_count=ready_to_count,
    )
    app.service(engine)  # type: ignore[arg-type]  # typed for classes; takes instances too
    return engine
