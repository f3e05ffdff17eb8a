"""A redis-server that can be sent back in time: snapshots taken with SAVE, and later either
loaded in place (``DEBUG RELOAD NOSAVE``: no connection drops, as a failover to a lagging replica
looks to a client) or restarted from (an RDB restore after a crash)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from stream.devtools.workers import free_port


class OlderRedis:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = workdir / f"older-redis-{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.snapshots_taken: list[Path] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30)

    def start(self) -> OlderRedis:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is needed on PATH"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_ping(self.port)
        return self

    def snapshot(self) -> Path:
        """SAVE (blocking, so the copy is one instant of the data) and keep a copy of the RDB."""
        with self.client() as c:
            c.save()
        copy = self.dir.parent / f"snapshot-{self.port}-{len(self.snapshots_taken) + 1}.rdb"
        shutil.copyfile(self.dir / "dump.rdb", copy)
        self.snapshots_taken.append(copy)
        return copy

    def reload(self, snapshot: Path) -> None:
        """Replace the whole dataset with ``snapshot`` in place, clients stay connected."""
        shutil.copyfile(snapshot, self.dir / "dump.rdb")
        with self.client() as c:
            c.execute_command("DEBUG", "RELOAD", "NOSAVE")

    def restart_from(self, snapshot: Path) -> None:
        """kill -9, then start again from ``snapshot`` (an RDB restore)."""
        self.kill()
        shutil.copyfile(snapshot, self.dir / "dump.rdb")
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_ping(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                return
        except (redis.ConnectionError, redis.BusyLoadingError):
            time.sleep(0.05)
    raise AssertionError(f"redis on {port} did not answer within {timeout_s}s")
