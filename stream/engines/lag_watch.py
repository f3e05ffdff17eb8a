"""Lag that moves when counting stops: once a second, for every partition this worker owns.

Both engines record their progress in the Ingestor's partition state (the next offset to apply,
when the last apply succeeded, the Kafka timestamp of the last applied record). This
service, apart from the consuming loop, asks the broker for the partitions' high watermarks
and takes the higher of that and the engine's last fetch high watermark (a broker may answer
ListOffsets behind its log: the embedded Tansu answers the last batch's base offset + 1), and
sets, per owned partition:

- ``upsell_consumer_lag``: high watermark minus the next offset to apply;
- ``upsell_consumer_lag_seconds``: 0 when caught up, else how long ago the oldest unapplied
  record can at most have been written: now minus the later of the last applied record's
  timestamp and the last moment the partition was seen caught up (before either is known: the
  time since the claim). It rises one second per second while nothing is applied;
- ``upsell_last_applied_timestamp_seconds``;

and it removes those series when the partition is no longer owned. A stalled apply (Redis
away, a blocked loop) leaves this loop running, so the gauges keep moving. When the broker does
not answer, the last high watermarks seen stand and the lag in seconds still grows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from stream.ingest.ingestor import Ingestor
from stream.ingest.types import PartitionState
from stream.kafka.security import KafkaTarget, client_options
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

Key = tuple[str, int]


class HighWatermarks(Protocol):
    async def end_offsets(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def partition_counts(self, topics: Collection[str]) -> dict[str, int]: ...
    async def close(self) -> None: ...


class KafkaHighWatermarks:
    """A consumer of its own (no group) used only for ListOffsets and metadata."""

    def __init__(self, target: KafkaTarget, client_id: str) -> None:
        self._target = target
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **client_options(self._target),
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=5_000,
                metadata_max_age_ms=30_000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def end_offsets(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        consumer = await self._started()
        return dict(await consumer.end_offsets(list(tps)))

    async def partition_counts(self, topics: Collection[str]) -> dict[str, int]:
        consumer = await self._started()
        await consumer.topics()  # refreshes the cluster metadata
        counts = {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
        return {t: n for t, n in counts.items() if n}

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def lag_seconds(lag: int, now: float, since: Collection[float | None], claimed_at: float) -> float:
    """0 when caught up; else now minus the latest known moment the partition was not behind
    by anything older (the last applied record's timestamp, the last time it was caught up),
    or minus the claim when neither is known."""
    if lag <= 0:
        return 0.0
    known = [s for s in since if s is not None]
    return max(0.0, now - (max(known) if known else claimed_at))


class LagWatch(Service):
    def __init__(
        self,
        *,
        ingestor: Ingestor,
        telemetry: Telemetry,
        topics: Collection[str],
        watermarks: HighWatermarks,
        fetch_highwater: Callable[[str, int], int | None] = lambda _topic, _partition: None,
        interval_s: float = 1.0,
        metadata_interval_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.ingestor = ingestor
        self.telemetry = telemetry
        self.topics = tuple(topics)
        self.watermarks = watermarks
        self.fetch_highwater = fetch_highwater
        self.interval_s = interval_s
        self.metadata_interval_s = metadata_interval_s
        self.clock = clock
        self.highs: dict[Key, int] = {}
        self._caught_up_at: dict[Key, float] = {}
        self._published: set[Key] = set()
        self._metadata_at = float("-inf")

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def on_stop(self) -> None:
        await self.watermarks.close()

    async def _run(self) -> None:
        while not self.should_stop:
            await self.refresh()
            await self.sleep(self.interval_s)

    async def refresh(self) -> None:
        """Ask the broker, then publish every owned partition's lag (also when it did not
        answer) and drop the series of partitions no longer owned."""
        owned = set(self.ingestor.partitions)
        for key in self._published - owned:
            self._forget(key)
        try:
            await self._ask_broker(owned)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("high watermarks unavailable (%s); lag from the last ones seen", exc)
        now = self.clock()
        for key, state in list(self.ingestor.partitions.items()):  # as owned after the await
            self._publish(key, state, now)

    async def _ask_broker(self, owned: set[Key]) -> None:
        if owned:
            ends = await self.watermarks.end_offsets([TopicPartition(t, p) for t, p in owned])
            self.highs.update({(tp.topic, tp.partition): high for tp, high in ends.items()})
        if self.clock() - self._metadata_at >= self.metadata_interval_s:
            for topic, count in (await self.watermarks.partition_counts(self.topics)).items():
                self.telemetry.topic_partitions.labels(topic).set(count)
            self._metadata_at = self.clock()

    def _publish(self, key: Key, state: PartitionState, now: float) -> None:
        fetched = self.fetch_highwater(*key)
        if fetched is not None and fetched > self.highs.get(key, -1):
            self.highs[key] = fetched
        high = self.highs.get(key)
        lag = 0 if high is None else max(0, high - state.next_offset)
        if high is not None and lag == 0:
            self._caught_up_at[key] = now
        last_ms = state.last_record_ms
        since = (None if last_ms is None else last_ms / 1000, self._caught_up_at.get(key))
        topic, partition = key[0], str(key[1])
        if high is not None:
            self.telemetry.consumer_lag.labels(topic, partition).set(lag)
        self.telemetry.consumer_lag_seconds.labels(topic, partition).set(
            lag_seconds(lag, now, since, state.applied_at)
            if high is not None
            else max(0.0, now - state.applied_at)
        )
        self.telemetry.last_applied_timestamp.labels(topic, partition).set(state.applied_at)
        self._published.add(key)

    def _forget(self, key: Key) -> None:
        self.telemetry.forget_partition(*key)
        self.highs.pop(key, None)
        self._caught_up_at.pop(key, None)
        self._published.discard(key)
