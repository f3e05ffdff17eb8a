"""The batch engine's offsets committed to Kafka: for lag visibility only.

Where a partition resumes is the checkpoint in Redis, never Kafka's committed offset; commits
only let Kafka's own tools and the broker's lag metrics see how far the group is. So they are
sent at most once a second, in the background, and a failure is only logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)

COMMIT_EVERY_S = 1.0


class OffsetCommits:
    def __init__(
        self,
        consumer: Callable[[], AIOKafkaConsumer | None],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self._consumer = consumer  # the engine's consumer, None before it started or once stopped
        self._spawn = spawn  # runs a commit in the background (the engine's add_future)
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self._committed_at = 0.0

    def applied(self, tp: TopicPartition, last_offset: int) -> None:
        """Records of ``tp`` up to ``last_offset`` are counted: commit the next offset."""
        self._pending[tp] = OffsetAndMetadata(last_offset + 1, "")

    def maybe_commit(self) -> None:
        """Send what was applied since the last commit, if that was a second ago or more."""
        now = time.monotonic()
        if self._pending and now - self._committed_at >= COMMIT_EVERY_S:
            self._committed_at = now
            self._spawn(self._commit(self._pending))
            self._pending = {}

    async def _commit(self, commits: dict[TopicPartition, OffsetAndMetadata]) -> None:
        consumer = self._consumer()
        if consumer is None:
            return
        try:
            await consumer.commit(commits)
        except (CommitFailedError, KafkaError) as exc:
            log.debug("commit for lag visibility failed: %s", exc)
