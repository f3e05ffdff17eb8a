"""The project's Prometheus files (deploy/prometheus) and the Prometheus tools that check them."""

from __future__ import annotations

import shutil
from pathlib import Path

PROM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def system_tool(name: str) -> str:
    """The path of ``promtool`` or ``prometheus``; a missing one fails the test, never skips it."""
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/ensure-system-tools installs it"
    return path
