"""The peers the bench compares with: a naive Faust Table app and Quix Streams, each counting
the views topic in a subprocess of its own (Quix in its own virtualenv, made on first use)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.measure import Run
from stream.settings import Topics

ROOT = Path(__file__).resolve().parents[1]
QUIX_VENV = ROOT / ".venv-quix"
QUIX_VERSION = "3.28.1"


def quix_python() -> str:
    """Quix Streams in its own virtualenv (made on first use); raises when it will not install."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"quixstreams=={QUIX_VERSION}",
                "orjson",
            ],
            check=True,
            timeout=600,
        )
    return str(python)


def counting_subprocess(
    python: str, module: str, bootstrap: str, topics: Topics, seconds: float
) -> Run:
    """Run one of the peers' counting apps; they print ``events N seconds S`` after warm-up."""
    proc = subprocess.run(
        [python, "-m", module, bootstrap, topics.prefix, str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 180,
    )
    found = re.search(
        r"events (\d+) seconds ([\d.]+) cpu ([\d.]+) rss ([\d.]+)", proc.stdout + proc.stderr
    )
    if found is None:
        raise RuntimeError(f"{module} failed: {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    events, window_s, cpu, rss = found.groups()
    return Run(int(events), float(window_s), float(cpu), float(rss))


def faust_table(bootstrap: str, topics: Topics, seconds: float) -> Run:
    return counting_subprocess(sys.executable, "bench.faust_table", bootstrap, topics, seconds)


def quix(bootstrap: str, topics: Topics, seconds: float) -> Run | str:
    """Quix Streams' run, or why it was not measured (it installs from the network)."""
    try:
        return counting_subprocess(quix_python(), "bench.quix_counts", bootstrap, topics, seconds)
    except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
        return str(exc)[:500]
