"""An erasure reaches the state changelog as tombstones (issue 34's changelog, issue 36's
erasure): the ledger entries it removes are marked in the same transaction, so the flusher sends
their tombstones and a Redis restored from the changelog does not bring an erased subscriber
back. Before the fix, erase_subscriber removed the entries without a mark: the changelog kept
their last values, and a restore wrote them back. The erasure's own record (``us:{S}:erasures``,
a list) is marked with it and comes back with a restore (before, lists were not carried)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from redis.asyncio import Redis

from stream.state import keys
from stream.state.changelog import ChangelogState, key_item, member_item
from stream.state.changelog_restore import RestoreWriter
from stream.state.erasure import erase_subscriber, erasure_records

pytestmark = [pytest.mark.integration]


async def test_an_erasure_marks_tombstones_for_the_changelog(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        shop = "erase-cl"
        ledger = keys.ledger(shop)
        erased = orjson.dumps({"subscriber_id": "sub-1", "order_id": "o-1"}).decode()
        kept = orjson.dumps({"subscriber_id": "sub-10", "order_id": "o-2"}).decode()
        await client.zadd(ledger, {erased: 1, kept: 2})
        done = await erase_subscriber(
            client, shop, "sub-1", by="test", via="cli", now=datetime.now(UTC)
        )
        assert done.ledger_entries_removed == 1
        assert await client.zrange(ledger, 0, -1) == [kept.encode()]
        _, (dirty,) = await ChangelogState(client).read([(shop, b"")])
        changes = {i.item: i.value for i in dirty.items}
        log = key_item(keys.erasures(shop)).encode()
        assert set(changes) == {member_item(ledger, erased).encode(), log}, changes
        assert changes[member_item(ledger, erased).encode()] is None
        assert await client.hexists(keys.CHANGELOG_SHOPS, shop), "the flusher finds the shop"

        # the erasure's own record comes back with a restore from these records
        records = await erasure_records(client, shop)
        await client.flushall()
        writer = RestoreWriter(
            client, now_ms=int(time.time() * 1000), retention_days=800, state_format=1
        )
        await writer.write(list(changes.items()))
        assert await erasure_records(client, shop) == records
        assert records[0]["ledger_entries_removed"] == 1
    finally:
        await client.aclose()
