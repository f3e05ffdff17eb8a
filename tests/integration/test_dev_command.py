"""``upsell-stream dev --demo`` as a user runs it: addresses within 30 s, counters moving in the
API, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from stream.devtools.ports import free_port
from stream.devtools.workers import ROOT, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,pgid="], capture_output=True, text=True).stdout
    return {int(p) for p, g in (line.split() for line in out.splitlines()) if int(g) == pid}


def test_dev_demo_starts_counts_and_stops_clean(tmp_path: Path) -> None:
    port, collector_port = free_port(), free_port()
    env = {
        **os.environ,
        "UPSELL_API_PORT": str(port),
        "UPSELL_COLLECTOR_PORT": str(collector_port),
    }
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
        _the_story_is_told(port, token, time.monotonic())
        history = ""
        while not history and time.monotonic() - started < 120:
            log = (tmp_path / "dev" / "demo.log").read_text().splitlines()
            history = next((line for line in log if line.startswith("history:")), "")
            time.sleep(0.2)
        assert history, "the demo never finished its history"
        seconds = float(history.split(" in ")[1].split()[0])
        print(f"{history}; ready after {time.monotonic() - started:.1f} s in all")
        # the budget is ~10 s (5-9 s measured on this machine when quiet); a machine shared with
        # other test runs has taken 21 s, so the test only catches a history gone far too big
        assert seconds <= 30, history
        status, _ = http_get(f"http://127.0.0.1:{port}/v1/shops/demo-utc/overview", token="bad")
        assert status == 401
        assert any(line.startswith("collector") for line in lines), lines
        status, page = http_get(f"http://127.0.0.1:{collector_port}/demo-store")
        assert status == 200 and b"upsell.init" in page and b"upk_" in page
        _, shops = http_get(f"http://127.0.0.1:{port}/v1/shops", token=token)
        assert "demo-store" in {s["shop_id"] for s in json.loads(shops)["shops"]}, shops
    finally:
        group = _children(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)  # to dev alone, as a process manager sends it
        rc = proc.wait(40)
    assert rc == 0, f"dev exited {rc} on SIGTERM"
    deadline = time.monotonic() + 10
    leftovers = {p for p in group if _alive(p)}
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = {p for p in leftovers if _alive(p)}
    assert not leftovers, f"dev stack processes still running 10 s after SIGTERM: {leftovers}"


def test_dev_prints_a_curl_line_whose_event_is_counted(tmp_path: Path) -> None:
    """``dev`` without the demo, as a new user starts it: the printed ``try`` line, run in a
    shell as pasted, sends a view that the API counts for the shop sandbox within seconds."""
    port, collector_port = free_port(), free_port()
    env = {**os.environ, "UPSELL_API_PORT": str(port), "UPSELL_COLLECTOR_PORT": str(collector_port)}
    out = tmp_path / "stdout"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "dev", "--dir", str(tmp_path / "dev")],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120  # ~10 s quiet; a machine under load took 35 s
        lines: list[str] = []
        while not any(line.startswith("try ") for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.2)
            lines = out.read_text().splitlines()
        token = next(line.split()[1] for line in lines if line.startswith("token"))
        _your_first_event(lines, port, token)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(40) == 0


def _your_first_event(lines: list[str], port: int, token: str) -> None:
    """The printed curl line, run as a user pastes it into a shell: its view is counted for
    the shop sandbox, and the printed key is a secret key of that shop."""
    key = next(line.split()[1] for line in lines if line.startswith("key "))
    curl = next(line.removeprefix("try").strip() for line in lines if line.startswith("try "))
    assert key.startswith("usk_") and key in curl, lines
    sent = subprocess.run(["sh", "-c", curl], capture_output=True, text=True, timeout=30)
    assert sent.returncode == 0 and json.loads(sent.stdout)["accepted"] == 1, sent
    url = f"http://127.0.0.1:{port}/v1/shops/sandbox/overview?period=today"
    views, deadline = 0, time.monotonic() + 30
    while views == 0 and time.monotonic() < deadline:
        status, body = http_get(url, token=token)
        views = json.loads(body)["metrics"]["banner_views"] if status == 200 else 0
        time.sleep(0.25)
    assert views == 1, f"the curl line's view was not counted: {body!r}"


def _get(port: int, token: str, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}{path}?{urlencode(params)}"
    status, body = http_get(url, token=token, timeout=10)
    assert status == 200, body
    return json.loads(body)


def _the_story_is_told(port: int, token: str, since: float) -> None:
    """The demo's history: a true winner, a tie, an SRM group, 90 days of chart."""
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    last_28 = {"period": "custom", "from": str(today - timedelta(days=27)), "to": str(today)}
    winner = None
    while time.monotonic() - since < 60 and winner is None:
        doc = _get(port, token, "/v1/shops/demo-berlin/groups/annual-upgrade", **last_28)
        winner = (doc["verdict"] or {}).get("winner")
        time.sleep(0.5)
    took = time.monotonic() - since
    assert winner == "discount-10", doc
    print(f"history counted {took:.1f} s after the first view was")
    tie = _get(port, token, "/v1/shops/demo-berlin/groups/premium-tier", **last_28)
    assert tie["verdict"]["winner"] is None, tie
    assert _get(port, token, "/v1/shops/demo-berlin/groups/bundle-offer", **last_28)["srm"][
        "mismatch"
    ]
    declared = _get(port, token, "/v1/shops/demo-utc/groups/bundle-offer", **last_28)["srm"]
    assert declared["expected_split"] == "settings"
    days = {"period": "custom", "from": str(today - timedelta(days=89)), "to": str(today)}
    points = _get(port, token, "/v1/shops/demo-berlin/timeseries", **days)["points"]
    assert sum(1 for p in points if p["metrics"]["banner_views"]) >= 85


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_dev_with_its_collector_port_taken_says_so_in_one_line(tmp_path: Path) -> None:
    """Another process on the collector's port: ``dev`` stops at once with one line naming the
    port and the setting to change (before, it started, talked to that process and ended in a
    traceback)."""
    port, collector_port = free_port(), free_port()
    env = {**os.environ, "UPSELL_API_PORT": str(port), "UPSELL_COLLECTOR_PORT": str(collector_port)}
    with socket.socket() as other:
        other.bind(("127.0.0.1", collector_port))
        other.listen()
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", "dev", "--dir", str(tmp_path / "dev")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"upsell-stream dev: port {collector_port} in use by another process; stop it, or "
        "choose others with UPSELL_API_PORT and UPSELL_COLLECTOR_PORT"
    ]
    assert not (tmp_path / "dev").exists(), "nothing started"
