"""The worker that tests/integration/conftest.py's ``engine_worker`` fixture keeps for a whole
test module, one per engine."""

from __future__ import annotations

from dataclasses import dataclass

from stream.devtools.workers import WorkerProcess
from stream.settings import Topics


@dataclass
class EngineWorker:
    engine: str
    topics: Topics
    worker: WorkerProcess
