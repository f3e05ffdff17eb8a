"""The line a peer's counting app prints when done (stdlib only: it runs in the peers' venvs)."""

from __future__ import annotations

import resource
import time


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM, a process's own peak RSS in MB (0.0 when /proc lacks it). Not getrusage's
    ru_maxrss: that survives exec on Linux, so a peer started from the bench reported the
    bench's peak instead of its own."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def report(events: int, started: float, cpu_started: float, ended: float | None = None) -> str:
    """``events N seconds S cpu P rss M``: CPU % of one core over the window (all threads of the
    process, librdkafka's included) and the peak RSS in MB."""
    seconds = (ended if ended is not None else time.monotonic()) - started
    cpu = 100 * (time.process_time() - cpu_started) / seconds if seconds else 0.0
    try:
        rss_mb = peak_rss_mb()
    except OSError:  # no /proc
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"events {events} seconds {seconds:.3f} cpu {cpu:.1f} rss {rss_mb:.1f}"
