"""A local 3-master Redis Cluster on free ports, for proving the ``{shop_id}`` key design."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.crc import key_slot

from tests.older_redis import wait_ping


def _free_ports(n: int) -> list[int]:
    # Cluster bus ports are port + 10000: pick ports whose bus port is free too.
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class LocalRedisCluster:
    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.workdir = workdir
        self.ports = _free_ports(masters)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> LocalRedisCluster:
        binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed for the cluster tests")
        for port in self.ports:
            node_dir = self.workdir / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self.procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--enable-debug-command",
                        "local",
                        "--dir",
                        str(node_dir),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        for port in self.ports:
            wait_ping(port)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = redis.Redis(port=self.ports[0]).execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER INFO"
            )
            if info.get("cluster_state") == "ok":
                return self
            time.sleep(0.2)
        raise RuntimeError("redis cluster did not reach state ok")

    def node_of(self, key: str) -> int:
        """The port of the primary that holds ``key``."""
        slot = key_slot(key.encode())
        with redis.Redis(port=self.ports[0]) as c:
            for start, end, primary, *_replicas in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(primary[1])
        raise AssertionError(f"no primary serves slot {slot}")

    def snapshot(self, port: int) -> Path:
        """SAVE one primary and keep a copy of its RDB."""
        with redis.Redis(port=port) as c:
            c.save()
        copy = self.workdir / f"snapshot-{port}-{time.monotonic_ns()}.rdb"
        shutil.copyfile(self.workdir / f"node-{port}" / "dump.rdb", copy)
        return copy

    def reload(self, port: int, snapshot: Path) -> None:
        """That primary comes back with ``snapshot``'s data; the other nodes keep theirs."""
        shutil.copyfile(snapshot, self.workdir / f"node-{port}" / "dump.rdb")
        with redis.Redis(port=port) as c:
            c.execute_command("DEBUG", "RELOAD", "NOSAVE")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
