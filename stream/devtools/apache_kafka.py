"""Apache Kafka (KRaft) on free ports, for the tests and the bench: the broker users run.

The jars come from Maven Central through the project's own files (``scripts/ensure-kafka``
resolves ``scripts/kafka/pom.xml``, checksums checked, cached in ``~/.m2``). Each node is a
combined broker and controller (``process.roles=broker,controller``) with a static quorum, its
storage formatted by Kafka's own ``kafka.tools.StorageTool`` (which also creates the SCRAM
users), started as ``java -cp ... kafka.Kafka server.properties`` in a process group of its own
and logging to ``node-N.log`` in the work directory.

With ``secured=True`` every node also listens for ``SSL`` and ``SASL_SSL`` (SCRAM-SHA-512), with a
server certificate signed by a test CA made at start with openssl (:mod:`.certificates`). The
``PLAINTEXT`` listener stays open for the tests that do not care about security; brokers talk
to each other over it.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from stream.devtools.certificates import TestCA, make_test_ca
from stream.devtools.embedded import EmbeddedError, _Process
from stream.devtools.kafka_config import LOG4J2, KafkaNode, server_properties
from stream.devtools.ports import port_open

ROOT = Path(__file__).resolve().parents[2]
ENSURE_KAFKA = ROOT / "scripts" / "ensure-kafka"
# A node's start on 2 cores: ~25 s alone, 60-90 s while 8 agents shared the machine (load
# 15-20), a restart after kill -9 as long (it recovers every log first).
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 15.0
HEAP = "-Xmx512m"
# The quick compiler only (C1) and serial GC: a test broker starts with less CPU (the C2
# compiler threads compete with the tests on 2 cores); the bench passes ``jvm_options=()``
# for a broker at full speed.
TEST_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def kafka_classpath() -> str:
    """The Java classpath of the pinned Apache Kafka, fetched on the first call on a machine."""
    if not ENSURE_KAFKA.exists():
        raise EmbeddedError(f"{ENSURE_KAFKA} is missing: Apache Kafka needs a source checkout")
    done = subprocess.run([str(ENSURE_KAFKA)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise EmbeddedError(f"scripts/ensure-kafka failed:\n{done.stderr[-4000:]}")
    return done.stdout.strip()


@dataclass(frozen=True)
class ScramUser:
    name: str
    password: str
    mechanism: str = "SCRAM-SHA-512"


class KafkaCluster:
    """``nodes`` combined broker+controller nodes of Apache Kafka on free ports.

    Replication: internal topics and ``default.replication.factor`` use every node (at most 3),
    ``min.insync.replicas`` is 2 with 2 nodes or more. ``bootstrap`` (PLAINTEXT) lists every
    node. With ``secured``: ``ssl_bootstrap`` and ``sasl_ssl_bootstrap``, ``ca.ca_file`` (the PEM
    the clients trust) and ``users`` (SCRAM-SHA-512, created at format time). ``kill(i)`` and
    ``start_node(i)`` take one node down hard and bring it back with its data."""

    def __init__(
        self,
        workdir: Path,
        nodes: int = 1,
        secured: bool = False,
        users: Mapping[str, str] | None = None,
        extra_settings: Mapping[str, str] | None = None,
        classpath: str | None = None,
        jvm_options: tuple[str, ...] = TEST_JVM_OPTIONS,
    ) -> None:
        self.workdir = workdir
        self.nodes = [KafkaNode(i + 1) for i in range(nodes)]
        self.secured = secured
        self.users = [ScramUser(n, p) for n, p in (users or {}).items()]
        self.extra_settings = dict(extra_settings or {})
        self._classpath = classpath
        self.jvm_options = jvm_options
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.ca: TestCA | None = None
        self._procs = {
            n.node_id: _Process(f"kafka-{n.node_id}", self._dir(n) / "out.log") for n in self.nodes
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def ssl_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.ssl_port}" for n in self.nodes)

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.sasl_ssl_port}" for n in self.nodes)

    def pid(self, node_id: int) -> int | None:
        return self._procs[node_id].pid

    def _dir(self, node: KafkaNode) -> Path:
        return self.workdir / f"node-{node.node_id}"

    @property
    def classpath(self) -> str:
        if self._classpath is None:
            self._classpath = kafka_classpath()
        return self._classpath

    def start(self) -> KafkaCluster:
        """Format every node (in parallel: each is a JVM start), start them, wait until every
        broker is registered and answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.properties").write_text(LOG4J2)
        if self.secured:
            self.ca = make_test_ca(self.workdir / "ca")
        _ = self.classpath  # fetched once, before the formats that use it run in parallel
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(self._format, self.nodes))
            for node in self.nodes:
                self._spawn(node)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _java(self, main: str, *args: str, tool: bool = False) -> list[str]:
        log4j = self.workdir / "log4j2.properties"
        # a tool runs for seconds: the quick compiler and serial GC start it faster
        options = TEST_JVM_OPTIONS if tool else self.jvm_options
        return [
            "java",
            HEAP,
            *options,
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            self.classpath,
            main,
            *args,
        ]

    def _format(self, node: KafkaNode) -> None:
        props = self._dir(node) / "server.properties"
        props.parent.mkdir(parents=True, exist_ok=True)
        props.write_text(self._properties(node))
        scram = [
            arg
            for u in self.users
            for arg in ("--add-scram", f"{u.mechanism}=[name={u.name},password={u.password}]")
        ]
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(props),
            *scram,
            tool=True,
        )
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise EmbeddedError(
                f"formatting Kafka node {node.node_id} failed:\n{done.stdout}{done.stderr}"
            )

    def _properties(self, node: KafkaNode) -> str:
        return server_properties(
            node, self.nodes, self._dir(node) / "data", self.ca, self.extra_settings
        )

    def _spawn(self, node: KafkaNode) -> None:
        props = self._dir(node) / "server.properties"
        self._procs[node.node_id].spawn(self._java("kafka.Kafka", str(props)))

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Every node's port open, then every broker registered in the cluster's metadata."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            proc = self._procs[node.node_id]
            while not port_open(node.port):
                if not proc.running():
                    raise EmbeddedError(f"Kafka node {node.node_id} exited:\n{proc.tail(40)}")
                if time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"Kafka node {node.node_id} did not open its port:\n{proc.tail(40)}"
                    )
                time.sleep(0.1)
        asyncio.run(_wait_for_brokers(self.bootstrap, len(self.nodes), deadline))

    def kill(self, node_id: int) -> None:
        """kill -9 one node (its data stays on disk)."""
        self._procs[node_id].kill()

    def start_node(self, node_id: int) -> None:
        """Start a stopped or killed node again on the same ports and data; waits until every
        broker is registered again."""
        self._spawn(next(n for n in self.nodes if n.node_id == node_id))
        self.wait_ready()

    def stop(self) -> None:
        """SIGTERM to every node at once (a node stopped alone waits for a quorum that the
        others' shutdown takes away), SIGKILL to what is left after STOP_TIMEOUT_S."""
        import signal

        for proc in self._procs.values():
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self._procs.values():
            if proc.proc is None:
                continue
            try:
                proc.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


async def _wait_for_brokers(bootstrap: str, brokers: int, deadline: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    last: object = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            described = await admin.describe_cluster()
            last = described
            if len(described["brokers"]) == brokers:
                return
        except (KafkaError, OSError) as exc:
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
    raise EmbeddedError(f"Kafka at {bootstrap}: {brokers} brokers not registered in time ({last})")
