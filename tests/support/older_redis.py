"""A redis-server that can be sent back in time: snapshots taken with SAVE, and later either
loaded in place (``DEBUG RELOAD NOSAVE``: no connection drops, as a failover to a lagging replica
looks to a client) or restarted from (an RDB restore after a crash)."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from stream.devtools.embedded import EmbeddedRedis


class OlderRedis(EmbeddedRedis):
    """An :class:`EmbeddedRedis` without AOF (it starts from its RDB) and with ``DEBUG``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(
            workdir, port, appendonly=False, extra_args=["--enable-debug-command", "local"]
        )
        self.snapshots_taken: list[Path] = []

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30)

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
