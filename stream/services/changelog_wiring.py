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
from redis.asyncio import RedisCluster

from stream.changelog_metrics import ChangelogMetrics
from stream.services.changelog_flusher import ChangelogFlusher
from stream.services.restore import restore_if_needed
from stream.settings import Settings
from stream.state.changelog import ChangelogState
from stream.state.changelog_cluster import ClusterChangelogState, stored_marker
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
        """None without a changelog (switched off)."""
        if not store.changelog:
            return None
        metrics = ChangelogMetrics(registry)
        restored = asyncio.Event()
        client = store.client
        state = (
            ClusterChangelogState(client)
            if isinstance(client, RedisCluster)
            else ChangelogState(client)
        )
        flusher = ChangelogFlusher(settings=s, state=state, metrics=metrics, ready=restored)
        changelog = cls(s, store, metrics, flusher, restored)
        store.before_claim = changelog.restore
        flusher.on_lost = changelog.restore
        return changelog

    async def restore(self) -> None:
        """Restore Redis from the changelog if it lost state: at the start, and whenever a
        claim (every rewind claims again) or the flusher finds Redis without the changelog's
        marker under the running worker. Meanwhile the apply script writes nothing (no marker:
        it answers rewound), so counting pauses and resumes from the restored checkpoints."""
        async with self._lock:
            if not self.store.changelog or not await self._supported():
                return
            if self.restored.is_set():
                async with unavailable_on_errors():
                    if await stored_marker(self.store.client) is not None:
                        return
                log.error(
                    "changelog: Redis lost its state under the running worker (no changelog "
                    "marker: emptied or replaced); counting paused until it is restored"
                )
                self.metrics.redis_lost.inc()
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
            self.store.day_index.forget()  # the index the restore derived, not this memo
            self.restored.set()

    async def _supported(self) -> bool:
        """A Cluster's changelog needs Redis 7.0 (scripts with ``allow-cross-slot-keys``, one
        call per primary: stream/state/changelog_cluster.py). On an older Cluster the worker
        runs without one: no marks, no flush (its flusher waits for a restore that never comes),
        no restore."""
        client = self.store.client
        if self.restored.is_set() or not isinstance(client, RedisCluster):
            return True
        async with unavailable_on_errors():
            info = await client.info("server", target_nodes=RedisCluster.RANDOM)
        version = str(info.get("redis_version", "0"))
        if int(version.split(".")[0]) >= 7:
            return True
        log.warning(
            "no state changelog: this Redis Cluster runs Redis %s, the changelog needs 7.0 "
            "(docs/state.md, 'On Redis Cluster')",
            version,
        )
        self.store.changelog = False
        return False


@contextlib.asynccontextmanager
async def _kafka_unavailable() -> AsyncIterator[None]:
    """A broker that does not answer yet is retried like Redis (StoreHealth.retry)."""
    try:
        yield
    except (KafkaError, OSError) as exc:
        raise StoreUnavailable(f"changelog unreachable: {exc}") from exc
