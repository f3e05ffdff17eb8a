"""Free ports on loopback for the embedded broker, Redis and the test processes' servers."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel draws outgoing connections' ports from (Linux's default else)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def is_free(port: int) -> bool:
    """True when nothing listens on ``port`` on loopback (or on every address) now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_open(port: int) -> bool:
    """True when a server accepts connections on ``port`` on loopback now."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A port that is free now and that no outgoing connection will take before a server binds
    it: drawn at random below the kernel's ephemeral range (port 0 gives a port *from* that
    range, which any client socket on the machine may take in the meantime; with several test
    processes and brokers on one machine, that race is real). Falls back to port 0 where the
    range leaves no room below it."""
    low, _ = _ephemeral_ports()
    rng = random.SystemRandom()
    for _ in range(100 if low > 11000 else 0):
        port = rng.randrange(10000, low)
        if is_free(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
