"""Rebuild Redis from the state changelog (docs/state.md, "Changelog"; docs/operations.md,
"Redis lost").

Redis holds the marker of the newest flush it sent (``us:cl:at``, set before the marker is sent,
so a live Redis is never behind its changelog). A Redis without it (emptied) or with an older
one than the changelog's newest marker lost state: its keys are deleted and the changelog is
written back, record by record in the log's order, then counting resumes from the restored
checkpoints. One worker at a time holds the restore lock; the others wait for it, then find
Redis up to date.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import TopicPartition

from stream.changelog_metrics import ChangelogMetrics
from stream.kafka.clients import make_consumer
from stream.kafka.reading import read_to_end
from stream.state import keys
from stream.state.changelog import MARKER_KEY
from stream.state.changelog_cluster import first_marker, stored_marker
from stream.state.changelog_restore import RestoreWriter
from stream.state.changelog_seed import ChangelogSeed
from stream.state.redis import STATE_FORMAT

log = logging.getLogger(__name__)

LOCK_MS = 60_000  # renewed while the restore runs
TAIL = 5_000  # records of partition 0 read back for its newest marker


@dataclass(frozen=True)
class Plan:
    redis_marker: int | None  # None: Redis holds no changelog marker
    changelog_marker: int | None  # None: the changelog holds no flush
    restore: bool
    reason: str


@dataclass(frozen=True)
class Report:
    records: int
    skipped: int
    deleted: int
    seconds: float
    marker: int


async def changelog_marker(bootstrap: str, topic: str) -> int | None:
    """The newest flush marker on the changelog (its partition 0's tail), None if none."""
    consumer = make_consumer(bootstrap, group_id=None, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        if not consumer.partitions_for_topic(topic):
            await consumer._client.force_metadata_update()  # see stream/kafka/reading.py
            if not consumer.partitions_for_topic(topic):
                return None
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        for start in (max(0, end - TAIL), 0):
            found = await _last_marker(consumer, tp, start, end)
            if found is not None or start == 0:
                return found
        return None
    finally:
        await consumer.stop()


async def _last_marker(consumer: Any, tp: TopicPartition, start: int, end: int) -> int | None:
    consumer.seek(tp, start)
    found = None
    while await consumer.position(tp) < end:
        got = await consumer.getmany(tp, timeout_ms=1000)
        for r in got.get(tp, []):
            if r.key == MARKER_KEY and r.value is not None:
                found = int(orjson.loads(r.value)["at"])
    return found


async def plan(client: Any, bootstrap: str, topic: str) -> Plan:
    mine = await stored_marker(client)  # on a Cluster, None too when a slot lost its marker
    theirs = await changelog_marker(bootstrap, topic)
    if theirs is None:
        return Plan(mine, theirs, False, "the changelog holds no flush")
    if mine is None:
        return Plan(mine, theirs, True, "Redis holds no changelog marker (emptied or replaced)")
    if mine < theirs:
        return Plan(mine, theirs, True, "Redis is older than the changelog")
    return Plan(mine, theirs, False, "Redis is up to date with the changelog")


async def restore(
    client: Any,
    bootstrap: str,
    topic: str,
    *,
    retention_days: int,
    metrics: ChangelogMetrics | None = None,
    wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> Report:
    """Replace Redis's state by the changelog's (the caller holds the restore lock)."""
    started = time.monotonic()
    w = RestoreWriter(client, wall_ms(), retention_days, STATE_FORMAT)
    deleted = await w.wipe()
    last_log = started
    async for records in read_to_end(bootstrap, topic):
        await w.write([(r.key, r.value) for r in records])
        if metrics is not None:
            metrics.restore_records.inc(len(records))
        if time.monotonic() - last_log >= 5:
            last_log = time.monotonic()
            log.info("restore: %d records written so far", w.records)
    await w.finish()
    seconds = time.monotonic() - started
    await client.set(
        keys.RESTORED,
        orjson.dumps({"at": wall_ms(), "records": w.records, "seconds": round(seconds, 3)}),
    )
    return Report(w.records, w.skipped, deleted, seconds, w.marker)


async def restore_if_needed(
    client: Any,
    bootstrap: str,
    topic: str,
    *,
    owner: str,
    retention_days: int,
    metrics: ChangelogMetrics | None = None,
) -> Report | None:
    """At a worker's start: restore when Redis lost state, one worker at a time; the others
    wait for the lock and then find Redis up to date. Returns what this worker restored."""
    while True:
        p = await plan(client, bootstrap, topic)
        if not p.restore:
            await first_marker(client)  # a first deployment: flush from 0
            if p.changelog_marker is None:  # state from before the changelog: send it all
                await ChangelogSeed(client).start()
            return None
        if await client.set(keys.RESTORE_LOCK, owner, nx=True, px=LOCK_MS):
            break
        log.info("restore: another worker restores Redis; waiting")
        await asyncio.sleep(1.0)
    try:
        p = await plan(client, bootstrap, topic)  # the lock's holder before us may have done it
        if not p.restore:
            return None
        log.error("restore: %s; rebuilding Redis from %s", p.reason, topic)
        return await _locked_restore(client, bootstrap, topic, owner, retention_days, metrics)
    finally:
        await client.delete(keys.RESTORE_LOCK)


async def _locked_restore(
    client: Any,
    bootstrap: str,
    topic: str,
    owner: str,
    retention_days: int,
    metrics: ChangelogMetrics | None,
) -> Report:
    async def renew() -> None:
        while True:
            await asyncio.sleep(LOCK_MS / 3000)
            await client.pexpire(keys.RESTORE_LOCK, LOCK_MS)

    renewing = asyncio.create_task(renew())
    if metrics is not None:
        metrics.restore_running.set(1)
    try:
        report = await restore(
            client, bootstrap, topic, retention_days=retention_days, metrics=metrics
        )
    finally:
        renewing.cancel()
        if metrics is not None:
            metrics.restore_running.set(0)
    if metrics is not None:
        metrics.restores.inc()
    log.warning(
        "restore: done by %s: %d records written (%d past the retention skipped), %d keys "
        "replaced, in %.1f s (%.0f records/s)",
        owner,
        report.records,
        report.skipped,
        report.deleted,
        report.seconds,
        report.records / max(report.seconds, 1e-9),
    )
    return report
