"""One Redis takes a batch in calls of ``shops_per_call`` shops (stream/state/redis.py): every call
checks the partition checkpoint, only the last one moves it, and a Redis that went back between
two calls of one batch is answered **rewound** by the next call, which writes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from stream.state import keys
from stream.state.batch import PartitionBatch
from stream.state.redis import RedisStore, connect
from stream.state.store import ApplyResult

TOPIC = "calls"
DAY = datetime.now(UTC).date().isoformat()


class ObservedStore(RedisStore):
    """A RedisStore that reads the checkpoint before each apply call, and may run ``between``
    before a given call (a Redis that goes back while a batch is applied)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checkpoints: list[int] = []
        self.between: dict[int, Any] = {}

    async def _call(self, payload: dict[str, Any], key_names: list[str]) -> ApplyResult:
        call = len(self.checkpoints) + 1
        if call in self.between:
            await self.between[call]()
        self.checkpoints.append(await self.checkpoint(TOPIC, 0))
        return await super()._call(payload, key_names)


def views_batch(
    shops: list[str], generation: int, first: int, expected: int, partition: int = 0
) -> PartitionBatch:
    """One view per shop, at offsets ``first``, ``first + 1``, ... of ``partition``."""
    batch = PartitionBatch(
        TOPIC, partition, generation, first + len(shops) - 1, 30, expected_checkpoint=expected
    )
    for i, shop in enumerate(shops):
        section = batch.section(shop, first + i)
        section.saw(first + i, 0)
        section.cells[("v", DAY, "g", "a")] += 1
    return batch


async def views(store: RedisStore, shop: str) -> int:
    return int(await store.client.hget(keys.day(shop, DAY), "v") or 0)


async def test_a_batch_in_calls_moves_the_checkpoint_last(redis_url: str) -> None:
    store = ObservedStore(connect(redis_url, cluster=False), shops_per_call=2)
    try:
        claim = await store.claim(TOPIC, 0)
        shops = ["a", "b", "c", "d", "e"]
        result = await store.apply(views_batch(shops, claim.generation, 0, -1))
        assert result.status == "ok", result
        assert store.checkpoints == [-1, -1, -1], "3 calls, none moved the checkpoint early"
        assert await store.checkpoint(TOPIC, 0) == 4
        assert [await views(store, s) for s in shops] == [1] * 5
    finally:
        await store.client.aclose()


async def test_a_redis_gone_back_between_two_calls_is_answered_rewound(redis_url: str) -> None:
    store = ObservedStore(connect(redis_url, cluster=False), shops_per_call=1)
    try:
        claim = await store.claim(TOPIC, 0)
        first = await store.apply(views_batch(["a", "b"], claim.generation, 0, -1))
        assert first.status == "ok" and await store.checkpoint(TOPIC, 0) == 1

        async def went_back() -> None:  # as a restore of a snapshot taken after offset 0
            await store.client.hset(keys.partition(TOPIC, 0), "offset", 0)

        store.between[4] = went_back  # before the second call of the next batch
        second = await store.apply(views_batch(["c", "d"], claim.generation, 2, 1))
        assert second.status == "rewound", second
        assert await views(store, "c") == 1, "the first call was applied"
        assert await views(store, "d") == 0, "the call after the rewind wrote nothing"
        assert await store.checkpoint(TOPIC, 0) == 0, "the checkpoint was not moved"
    finally:
        await store.client.aclose()


class CountedStore(RedisStore):
    """A RedisStore whose apply script records how many of its calls were in Redis at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = self.most = 0
        script = self._apply

        async def counted(**kw: Any) -> Any:
            self.now += 1
            self.most = max(self.most, self.now)
            try:
                await asyncio.sleep(0.2)  # calls sent together overlap here, even under load
                return await script(**kw)
            finally:
                self.now -= 1

        self._apply = counted  # type: ignore[assignment]


async def test_calls_in_flight_bounds_the_apply_scripts_sent_at_once(redis_url: str) -> None:
    """Four partitions' batches applied at once: several scripts in Redis together by default (all
    four on a quiet machine; three once in CI), one at a time with ``calls_in_flight=1`` (a read
    then waits behind one script at most)."""
    for bound, most in ((0, range(2, 5)), (1, range(1, 2))):
        client = connect(redis_url, cluster=False)
        await client.flushall()
        store = CountedStore(client, calls_in_flight=bound)
        try:
            claims = [await store.claim(TOPIC, p) for p in range(4)]
            batches = [views_batch([f"s{p}"], c.generation, 0, -1, p) for p, c in enumerate(claims)]
            results = await asyncio.gather(*(store.apply(b) for b in batches))
            assert [r.status for r in results] == ["ok"] * 4
            assert store.most in most, (bound, store.most)
            assert [await views(store, f"s{p}") for p in range(4)] == [1] * 4
        finally:
            await client.aclose()
