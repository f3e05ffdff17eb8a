"""The line a peer's counting app prints when done (stdlib only: it runs in the peers' venvs)."""

from __future__ import annotations

import resource
import time


def _peak_rss_mb() -> float:
    """VmHWM: this process's own peak. (getrusage's ru_maxrss survives exec on Linux, so a peer
    started from the bench reported the bench's peak instead of its own.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(events: int, started: float, cpu_started: float, ended: float | None = None) -> str:
    """``events N seconds S cpu P rss M``: CPU % of one core over the window (all threads of the
    process, librdkafka's included) and the peak RSS in MB."""
    seconds = (ended if ended is not None else time.monotonic()) - started
    cpu = 100 * (time.process_time() - cpu_started) / seconds if seconds else 0.0
    rss_mb = _peak_rss_mb()
    return f"events {events} seconds {seconds:.3f} cpu {cpu:.1f} rss {rss_mb:.1f}"
