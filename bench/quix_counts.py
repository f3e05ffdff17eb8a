"""The peer: the same per-day/variation view counters in Quix Streams stateful processing.

Runs in its own virtualenv (``.venv-quix``, made by ``bench`` on first use) so Quix's
dependencies never mix with ours: ``python -m bench.quix_counts BOOTSTRAP PREFIX SECONDS``;
prints ``events <n> seconds <s>`` for the events counted after warm-up. State lives in Quix's
RocksDB store with its changelog topic, at-least-once, as Quix ships it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import datetime
from typing import Any

import orjson
from quixstreams import Application  # type: ignore[import-not-found]
from quixstreams.state import State  # type: ignore[import-not-found]

from bench.peer_report import report


def main() -> None:
    bootstrap, prefix, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{os.getpid()}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),
        processing_guarantee="at-least-once",
        producer_extra_config={"enable.idempotence": False},  # the embedded broker rejects it
        loglevel=os.environ.get("QUIX_LOGLEVEL", "WARNING"),
    )
    views = app.topic(f"{prefix}banner-views", value_deserializer="bytes")
    progress: dict[str, float] = {"n": 0, "t0": 0.0, "n0": 0, "c0": 0.0}

    def count(raw: bytes, state: State) -> None:
        doc: dict[str, Any] = orjson.loads(raw)
        day = datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00")).date()
        cell = f"{day}|{doc['group_id']}|{doc['variation_id']}"  # per shop: the message key
        state.set(cell, state.get(cell, 0) + 1)
        progress["n"] += 1
        progress["last"] = time.monotonic()
        n = progress["n"]
        if n == 2000:
            progress["t0"], progress["n0"] = time.monotonic(), n
            progress["c0"] = time.process_time()
        if progress["t0"] and n % 500 == 0 and time.monotonic() - progress["t0"] >= seconds:
            print(report(int(n - progress["n0"]), progress["t0"], progress["c0"]), flush=True)
            os._exit(0)

    def drained() -> None:
        """When the topic runs out before the window ends (a fast peer on a small pre-load),
        report up to the last event instead of waiting for more forever."""
        while True:
            time.sleep(0.5)
            last = progress.get("last", 0.0)
            if progress["t0"] and time.monotonic() - last > 3:
                done = int(progress["n"] - progress["n0"])
                print(report(done, progress["t0"], progress["c0"], ended=last), flush=True)
                os._exit(0)

    threading.Thread(target=drained, daemon=True).start()
    app.dataframe(views).update(count, stateful=True)
    app.run()


if __name__ == "__main__":
    main()
