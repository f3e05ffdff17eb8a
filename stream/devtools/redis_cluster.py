"""A local Redis Cluster of primaries on free ports (no replicas), for the cluster tests and
``python -m bench.cluster``: each node is an :class:`EmbeddedRedis` with cluster mode on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.crc import key_slot

from stream.devtools.embedded import EmbeddedError, EmbeddedRedis

_NODE_ARGS = [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--enable-debug-command",
    "local",
]


def free_cluster_ports(n: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free too."""
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
    def __init__(self, workdir: Path, masters: int = 3, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.nodes = [
            EmbeddedRedis(workdir, port, appendonly=appendonly, extra_args=_NODE_ARGS)
            for port in free_cluster_ports(masters)
        ]

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> LocalRedisCluster:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise EmbeddedError("redis-cli is needed to create a Redis Cluster")
        try:
            for node in self.nodes:
                node.start()
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
            self._wait_ok(30.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with redis.Redis(port=self.ports[0]) as c:
                info = c.execute_command("CLUSTER INFO")
            if info.get("cluster_state") == "ok":
                return
            time.sleep(0.2)
        raise EmbeddedError(f"the Redis Cluster did not reach state ok within {timeout_s:.0f} s")

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
        shutil.copyfile(self._node(port).dir / "dump.rdb", copy)
        return copy

    def reload(self, port: int, snapshot: Path) -> None:
        """That primary comes back with ``snapshot``'s data; the other nodes keep theirs."""
        shutil.copyfile(snapshot, self._node(port).dir / "dump.rdb")
        with redis.Redis(port=port) as c:
            c.execute_command("DEBUG", "RELOAD", "NOSAVE")

    def _node(self, port: int) -> EmbeddedRedis:
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
