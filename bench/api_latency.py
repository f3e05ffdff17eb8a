"""Query latency on a shop with 50 groups x 4 variations and a year of data, through HTTP."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, date, datetime, timedelta

import aiohttp

from stream.state import keys
from stream.state.batch import MoneyEntry, PartitionBatch
from stream.state.redis import RedisStore, connect

SHOP = "bench-year"


async def load_year(redis_url: str, groups: int = 50, variations: int = 4) -> int:
    """Write 365 days of counters for SHOP through the real applier; returns counter sets."""
    client = connect(redis_url, cluster=False)
    store = RedisStore(client)
    claim = await store.claim("bench.year", 0)
    today = datetime.now(UTC).date()
    offset = 0
    for d in range(365):
        day = (today - timedelta(days=d)).isoformat()
        batch = PartitionBatch("bench.year", 0, claim.generation, offset + 1, 800)
        section = batch.section(SHOP, offset)
        for g in range(groups):
            for v in range(variations):
                section.cells[("v", day, f"group-{g:02d}", f"var-{v}")] += 100 + g + v
                section.cells[("c", day, f"group-{g:02d}", f"var-{v}")] += 10 + v
        for i in range(5):
            group = f"group-{i:02d}"
            section.money.append(
                MoneyEntry(
                    seen_key=keys.seen(SHOP, "u", f"{day}-{i}"),
                    counters={
                        keys.day(SHOP, day): {"u": 1, "r:USD": 1000, "e:USD": 500},
                        keys.groups(SHOP, day): {keys.field("u", group): 1},
                        keys.variations(SHOP, day, group): {keys.field("u", "var-0"): 1},
                        keys.transitions(SHOP, day, group): {
                            keys.transition_field("u", "var-0", "basic", "pro"): 1
                        },
                    },
                    hll=(keys.upgraders(SHOP, day), f"sub-{i}"),
                    ledger=(
                        keys.ledger(SHOP),
                        int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000) + i,
                        f'{{"event_id":"{day}-{i}"}}',
                    ),
                )
            )
        section.saw(offset + 1, 0)
        offset += 2
        result = await store.apply(batch)
        assert result.status == "ok", result
    await client.aclose()
    return 365 * groups * variations


async def measure(base_url: str, requests: int = 200) -> dict[str, dict[str, float]]:
    cases = {
        "overview this_month": "/overview?period=this_month",
        "overview year_to_date": "/overview?period=year_to_date",
        "overview YTD + compare": "/overview?period=year_to_date&compare=previous_year",
        "groups this_month": "/groups?period=this_month",
        "groups year_to_date": "/groups?period=year_to_date",
        "timeseries this_month": "/timeseries?period=this_month&interval=day",
        "timeseries YTD week": "/timeseries?period=year_to_date&interval=week",
    }
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as session:
        for name, path in cases.items():
            url = f"{base_url}/v1/shops/{SHOP}{path}"
            samples = []
            for i in range(requests + 10):
                t = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    assert resp.status == 200, await resp.text()
                if i >= 10:  # warm-up excluded
                    samples.append((time.perf_counter() - t) * 1000)
            samples.sort()
            out[name] = {
                "p50_ms": round(statistics.median(samples), 2),
                "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
            }
    return out


def days_in_year_to_date() -> int:
    today = date.today()
    return (today - date(today.year, 1, 1)).days + 1


if __name__ == "__main__":
    import sys

    print(asyncio.run(measure(sys.argv[1])))
