"""The state changelog of one worker: its flusher and the restore that runs before anything
reads or writes Redis (the start-up or the first partition claim, whichever comes first: the
Faust engine claims its partitions before the app's services start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from stream.changelog_metrics import ChangelogMetrics
from stream.services.changelog_flusher import ChangelogFlusher
from stream.services.restore import restore_if_needed
from stream.settings import Settings
from stream.state.changelog import ChangelogState
from stream.state.redis import RedisStore, unavailable_on_errors
from stream.state.store import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass
class StateChangelog:
    settings: Settings
    store: RedisStore
    metrics: ChangelogMetrics
    flusher: ChangelogFlusher
    restored: asyncio.Event = field(default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def build(
        cls, s: Settings, store: RedisStore, registry: CollectorRegistry
    ) -> StateChangelog | None:
        """None without a changelog: switched off, or a Redis Cluster (docs/state.md)."""
        if not store.changelog:
            if s.changelog:
                log.warning("no state changelog on a Redis Cluster (docs/state.md, 'Changelog')")
            return None
        metrics = ChangelogMetrics(registry)
        restored = asyncio.Event()
        flusher = ChangelogFlusher(
            settings=s, state=ChangelogState(store.client), metrics=metrics, ready=restored
        )
        changelog = cls(s, store, metrics, flusher, restored)
        store.before_claim = changelog.restore
        return changelog

    async def restore(self) -> None:
        """Restore Redis from the changelog if it lost state, once per process."""
        async with self._lock:
            if self.restored.is_set():
                return
            s = self.settings
            async with unavailable_on_errors(), _kafka_unavailable():
                await restore_if_needed(
                    self.store.client,
                    s.kafka_bootstrap,
                    s.topics.changelog,
                    owner=s.worker_id,
                    retention_days=s.retention_days,
                    metrics=self.metrics,
                )
            self.restored.set()


@contextlib.asynccontextmanager
async def _kafka_unavailable() -> AsyncIterator[None]:
    """A broker that does not answer yet is retried like Redis (StoreHealth.retry)."""
    try:
        yield
    except (KafkaError, OSError) as exc:
        raise StoreUnavailable(f"changelog unreachable: {exc}") from exc
