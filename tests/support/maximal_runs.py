"""Upgrades of the documented maximum amount into one worker, and two above it: the run behind
tests/integration/test_maximal_amounts.py (make test) and tests/chaos/test_volume_chaos.py
(make chaos), at two sizes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from stream.settings import Topics
from tests.support.e2e import day_metrics, eventually, produce, read_topic, worker_env, workers

MAXIMUM = 10**12  # contract §2
AMOUNT = MAXIMUM - 1


def upgrade(i: int, at: datetime, revenue: int, to_mrr: int, from_mrr: int = 0) -> bytes:
    def plan(name: str, mrr: int) -> dict[str, Any]:
        return {"product_ids": [name], "selling_plan_id": name, "mrr_minor": mrr}

    return orjson.dumps(
        {
            "event_id": f"max-{i}",
            "shop_id": "max",
            "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "subscriber_id": f"s{i}",
            "order_id": f"o{i}",
            "group_id": "g",
            "variation_id": "a",
            "from": plan("basic", from_mrr),
            "to": plan("pro", to_mrr),
            "revenue_minor": revenue,
            "currency": "JPY",
        }
    )


async def maximal_run(
    engine: str, bootstrap: str, redis_url: str, topics: Topics, tmp_path: Path, n: int
) -> None:
    """``n`` upgrades of the maximal amount over two days, and two above the maximum, into one
    worker of ``engine``: the sums come out exact over HTTP and the two are dead-lettered.
    Prints the figures."""
    started = time.monotonic()
    last = datetime.now(UTC) - timedelta(hours=1)
    days = (last - timedelta(days=1), last)
    values = [upgrade(i, days[i % 2], AMOUNT, AMOUNT) for i in range(n)]
    values.insert(n // 3, upgrade(n, last, MAXIMUM + 1, AMOUNT))
    values.insert(n // 2, upgrade(n + 1, last, AMOUNT, AMOUNT, from_mrr=MAXIMUM + 1))
    (w,) = workers(worker_env(bootstrap, redis_url, topics, engine), tmp_path, 1)
    try:
        w.start().wait_ready()
        await produce(bootstrap, topics, [("upgrade", b"max", v) for v in values])
        metrics = await eventually(
            lambda: day_metrics(w.url, "max", days[0].date(), days[1].date()),
            lambda m: m.get("conversions") == n,
            120 + n / 200,
        )
        letters = await eventually(
            lambda: read_topic(bootstrap, topics.dead_letters), lambda rs: len(rs) >= 2, 30
        )
    finally:
        w.stop()
    total = n * AMOUNT
    assert total > 2**53
    assert metrics.get("conversions") == n, metrics
    assert metrics["revenue_minor"] == {"JPY": total}
    assert metrics["expansion_mrr_minor"] == {"JPY": total}
    assert metrics["net_arr_minor"] == {"JPY": 12 * total}
    reasons = sorted(orjson.loads(r.value)["reason"] for r in letters)
    assert reasons == ["bad_value:from.mrr_minor", "bad_value:revenue_minor"], reasons
    print(
        f"\nmaximal amounts ({engine}): {n:,} upgrades of {AMOUNT:,} minor units, revenue "
        f"{total:,} = {total / 2**53:.1f} x 2^53 summed exactly over HTTP, ARR {12 * total:,}; "
        f"2 above the maximum dead-lettered as bad_value; {time.monotonic() - started:.0f} s"
    )
