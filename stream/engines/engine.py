"""What the worker's app needs of an engine, whichever one counts the counted topics.

Each engine package has one builder (:func:`stream.engines.batch.build`,
:func:`stream.engines.faust.build`) of this module's :class:`Build` shape; ``stream/app.py`` picks
it by ``UPSELL_ENGINE`` and knows nothing else of the engine. The builder also attaches the
engine to the worker's Faust app, which starts and stops it with the worker (the batch engine is
a service Faust hosts; the Faust engine's agents and timers are Faust's own): the app never
starts or stops an engine itself, so neither is part of the protocol.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import faust

from stream.ingest.ingestor import Ingestor
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.telemetry import Telemetry


class Engine(Protocol):
    @property
    def joined(self) -> bool:
        """The group gave this worker its (possibly empty) share of the counted partitions once
        (``/readyz``: ``partitions_assigned``)."""
        ...

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's high watermark in the engine's last fetch (None before one): the lag
        watch takes the higher of it and the broker's answer."""
        ...


class Build(Protocol):
    def __call__(
        self,
        app: faust.App,
        settings: Settings,
        *,
        ingestor: Ingestor,
        telemetry: Telemetry,
        health: StoreHealth,
        ready_to_count: asyncio.Event,
    ) -> Engine:
        """The engine of the counted topics, attached to ``app``; it counts once
        ``ready_to_count`` is set (the start-up's settings are loaded)."""
        ...
