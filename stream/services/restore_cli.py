"""``upsell-stream restore [--dry-run] [--force] | --seed``: the restore by hand
(docs/operations.md, "Redis lost"). Stop the workers first: a worker counting meanwhile would
write into the Redis being replaced. ``--seed`` walks Redis again for the changelog instead."""

from __future__ import annotations

import asyncio
import logging

from stream.kafka.reading import read_to_end
from stream.services.restore import plan, restore_if_needed
from stream.settings import Settings
from stream.state import keys
from stream.state.changelog_seed import SEED
from stream.state.redis import connect

log = logging.getLogger(__name__)


async def run(settings: Settings, dry_run: bool, force: bool) -> int:
    client = connect(settings.redis_url, cluster=settings.redis_cluster)
    topic = settings.topics.changelog
    try:
        p = await plan(client, settings.kafka_bootstrap, topic)
        print(f"Redis marker: {p.redis_marker}, changelog marker: {p.changelog_marker}: {p.reason}")
        if dry_run:
            records = 0
            async for batch in read_to_end(settings.kafka_bootstrap, topic):
                records += len(batch)
            verb = "would restore" if p.restore or force else "would leave Redis as it is"
            print(f"{verb}: {records} records on {topic} (before compaction's last pass)")
            return 0
        if not p.restore and not force:
            print("nothing to do (--force replaces Redis's state by the changelog's anyway)")
            return 0
        if force and not p.restore:
            await client.delete(keys.CHANGELOG_AT)  # so the restore below runs
        report = await restore_if_needed(
            client,
            settings.kafka_bootstrap,
            topic,
            owner=f"cli-{settings.worker_id}",
            retention_days=settings.retention_days,
        )
        if report is None:
            print("another process restored Redis meanwhile")
            return 0
        print(
            f"restored {report.records} records ({report.skipped} past the retention skipped, "
            f"{report.deleted} keys replaced) in {report.seconds:.1f} s"
        )
        return 0
    finally:
        await client.aclose()


def main(settings: Settings, dry_run: bool, force: bool) -> int:
    return asyncio.run(run(settings, dry_run, force))


def seed(settings: Settings) -> int:
    """Walk Redis again and mark all its state for the changelog (stream/state/changelog_seed.py):
    what old workers changed during a rolling upgrade from a version without the changelog."""

    async def start() -> None:
        client = connect(settings.redis_url, cluster=settings.redis_cluster)
        try:
            await client.set(SEED, "0")
        finally:
            await client.aclose()

    asyncio.run(start())
    print("the running workers' flusher now marks and sends all of Redis's state (log line")
    print("'changelog: seeding done' at the end; no flush marker until then)")
    return 0
