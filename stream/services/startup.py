"""Start-up order, as a Faust-hosted service: topics exist, settings are loaded, then counting.

Until :attr:`Bootstrapper.ready_to_count` is set no counted event is consumed, which is what
makes "settings first" hold. Afterwards it refreshes the settings cache from Redis every second,
so a setting consumed by any worker reaches all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiokafka.errors import KafkaError
from mode import Service

from stream.backoff import Backoff
from stream.dates.clock import Clock
from stream.kafka.topics import ensure_topics
from stream.services.settings_bootstrap import bootstrap_settings
from stream.settings import Settings
from stream.state.health import StoreHealth
from stream.state.redis import STATE_FORMAT
from stream.state.shop_directory import ShopDirectory
from stream.state.store import StoreUnavailable

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 1.0
TOPICS_INTERVAL_S = 10.0  # re-create topics a broker lost (a memory-only broker restarted)


class FormatStore(Protocol):
    async def state_format(self, mine: int) -> int: ...

    async def fold_legacy_shops(self, day: int) -> int: ...


class Bootstrapper(Service):
    def __init__(
        self,
        settings: Settings,
        directory: ShopDirectory,
        store: FormatStore,
        health: StoreHealth,
        clock: Clock,
        restore: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        super().__init__()
        # rebuilds Redis from the state changelog when it lost state, before anything else
        # writes to it (stream/services/restore.py)
        self.restore = restore
        self.settings = settings
        self.directory = directory
        self.store = store
        self.health = health
        self.clock = clock
        self.ready_to_count = asyncio.Event()
        self.state_format_known = True  # False: Redis holds a newer format; never counts

    async def _state_format_known(self) -> bool:
        """Mixed versions: count only if Redis's state format is one this version writes."""
        stored = await self.health.retry(lambda: self.store.state_format(STATE_FORMAT), "format")
        if stored > STATE_FORMAT:
            log.error(
                "Redis holds state format %d, this version writes %d: not counting (the API "
                "still answers); roll forward, or restore the snapshot taken before the upgrade",
                stored,
                STATE_FORMAT,
            )
            self.state_format_known = False
        return self.state_format_known

    async def on_start(self) -> None:
        self.add_future(self._bootstrap())

    async def _bootstrap(self) -> None:
        s = self.settings
        backoff = Backoff(first_s=0.5, max_s=5.0)
        while not self.should_stop:
            try:
                await ensure_topics(
                    s.kafka,
                    s.topics,
                    s.partitions,
                    s.replication_factor,
                    s.min_insync_replicas,
                )
                if self.restore is not None:
                    await self.health.retry(self.restore, "restore")
                await self.health.retry(
                    lambda: bootstrap_settings(
                        s.kafka, s.topics.shops, self.directory, self.clock()
                    ),
                    "settings",
                )
                break
            except (KafkaError, OSError) as exc:
                log.warning("broker not reachable yet (%s); retrying in %.1fs", exc, backoff.delay)
                await backoff.wait()
        if not await self._state_format_known():
            return
        today = int(self.clock().timestamp() // 86_400)
        moved = await self.health.retry(lambda: self.store.fold_legacy_shops(today), "format")
        if moved:
            log.info("us:shops:seen of an earlier version: %d shops moved to the shop list", moved)
        self.ready_to_count.set()
        log.info("shop settings loaded; counting starts")
        since_topics = 0.0
        while not self.should_stop:
            await asyncio.sleep(REFRESH_INTERVAL_S)
            try:
                await self.directory.refresh()
            except StoreUnavailable as exc:
                self.health.failed("settings", exc)
            since_topics += REFRESH_INTERVAL_S
            if since_topics >= TOPICS_INTERVAL_S:
                since_topics = 0.0
                try:
                    created = await ensure_topics(
                        s.kafka,
                        s.topics,
                        s.partitions,
                        s.replication_factor,
                        s.min_insync_replicas,
                    )
                except (KafkaError, OSError) as exc:
                    log.debug("topic check failed: %s", exc)
                    continue
                if created:
                    log.warning("re-created missing topics: %s", ", ".join(created))
