"""``upsell-stream dev --demo`` as a user runs it: addresses within 30 s, counters moving in the
API, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workers import ROOT, free_port, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,pgid="], capture_output=True, text=True).stdout
    return {int(p) for p, g in (line.split() for line in out.splitlines()) if int(g) == pid}


def test_dev_demo_starts_counts_and_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "UPSELL_API_PORT": str(port)}
    started = time.monotonic()
    out = tmp_path / "stdout"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stream.cli",
                "dev",
                "--demo",
                "--rate",
                "300",
                "--dir",
                str(tmp_path / "dev"),
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lines: list[str] = []
    token = None
    try:
        while time.monotonic() - started < 60 and token is None:
            time.sleep(0.2)
            lines = out.read_text().splitlines()
            if any(line.startswith("redis") for line in lines):
                assert time.monotonic() - started < 30, lines  # broker + Redis addresses
            token = next((line.split()[1] for line in lines if line.startswith("token")), None)
        assert token, "\n".join(lines)
        assert any(line.startswith("broker") for line in lines)
        views = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and views == 0:
            try:
                status, body = http_get(
                    f"http://127.0.0.1:{port}/v1/shops/demo-utc/overview?period=this_month",
                    token=token,
                )
            except OSError:
                status = 0
            if status == 200:
                views = json.loads(body)["metrics"]["banner_views"]
            time.sleep(1)
        assert views > 0, "\n".join(lines)
        status, _ = http_get(f"http://127.0.0.1:{port}/v1/shops/demo-utc/overview", token="bad")
        assert status == 401
    finally:
        group = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(40)
    time.sleep(1)
    leftovers = {p for p in group if _alive(p)}
    assert not leftovers, leftovers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
