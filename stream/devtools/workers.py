"""Workers (and collectors) as real subprocesses (``python -m stream.cli worker``), for
end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stream.devtools.ports import free_port
from stream.settings import Topics

ROOT = Path(__file__).resolve().parents[2]


def worker_env(
    bootstrap: str, redis_url: str, topics: Topics, engine: str, **extra: str
) -> dict[str, str]:
    """A worker's environment on ``topics`` of ``bootstrap`` and ``redis_url``, auth off;
    ``extra`` adds or overrides variables. The embedded broker refuses the idempotent producer
    (InitProducerId); some tests run Redis without persistence on purpose (rewinds, Cluster),
    so its configuration is warned about, not refused."""
    return {
        "UPSELL_KAFKA_BOOTSTRAP": bootstrap,
        "UPSELL_KAFKA_IDEMPOTENCE": "off",
        "UPSELL_REDIS_CONFIG_CHECK": "warn",
        "UPSELL_REDIS_URL": redis_url,
        "UPSELL_TOPIC_PREFIX": topics.prefix,
        "UPSELL_AUTH": "off",
        "UPSELL_ENGINE": engine,
        **extra,
    }


def http_get(url: str, token: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@dataclass
class WorkerProcess:
    """One worker subprocess with its own API port, logging to ``log_dir``. ``role`` runs
    another process role of the CLI on that port instead (``collector``)."""

    env: dict[str, str]
    log_dir: Path
    name: str = "worker"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    role: str = "worker"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        self.starts += 1
        env = {
            **os.environ,
            **self.env,
            "UPSELL_API_PORT": str(self.port),
            "UPSELL_API_HOST": "127.0.0.1",
            "UPSELL_COLLECTOR_PORT": str(self.port),
            "UPSELL_COLLECTOR_HOST": "127.0.0.1",
            "UPSELL_WORKER_ID": f"{self.name}-{self.starts}",
            "UPSELL_DATA_DIR": str(self.log_dir / f"{self.name}-data"),
        }
        log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", self.role],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            try:
                ready = "/readyz/counting" if self.role == "worker" else "/readyz"
                status, _ = http_get(f"{self.url}{ready}", timeout=1.0)
            except OSError:
                status = 0
            if status == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, no goodbye: the crash case."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        path = self.log_dir / f"{self.name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def http_post(
    url: str,
    body: bytes,
    *,
    key: str | None = None,
    origin: str | None = None,
    content_type: str = "application/json",
    method: str = "POST",
    timeout: float = 15.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body``; ``key`` as a Bearer header. Returns (status, headers, body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    req.add_header("Content-Type", content_type)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if origin:
        req.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), dict(resp.headers.items()), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers.items()), exc.read()
