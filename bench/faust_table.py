"""The naive alternative: a plain Faust agent counting into a Faust Table, per event.

Run as a subprocess: ``python -m bench.faust_table BOOTSTRAP PREFIX SECONDS``; prints
``events <n> seconds <s>`` for the events counted after warm-up.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime

import faust
import orjson

from bench.peer_report import report


def main() -> None:
    bootstrap, prefix, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    app = faust.App(
        f"bench-table-{os.getpid()}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        broker_session_timeout=6,
        broker_heartbeat_interval=1.5,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        topic_partitions=8,
    )
    views = app.topic(
        f"{prefix}banner-views",
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    counts = app.Table("counts", default=int, partitions=8)
    state: dict[str, float] = {"n": 0, "t0": 0.0, "n0": 0, "c0": 0.0}

    @app.agent(views)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            doc = orjson.loads(event.value)
            day = datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00")).date()
            counts[f"{doc['shop_id']}|{day}|{doc['group_id']}|{doc['variation_id']}"] += 1
            state["n"] += 1
            if state["n"] == 2000:
                state["t0"], state["n0"] = time.monotonic(), state["n"]
                state["c0"] = time.process_time()
            if state["t0"] and time.monotonic() - state["t0"] >= seconds:
                print(report(int(state["n"] - state["n0"]), state["t0"], state["c0"]), flush=True)
                os._exit(0)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
