"""The configuration files of a test node of Apache Kafka (stream/devtools/apache_kafka.py): its
``server.properties`` (a combined broker and controller of a static KRaft quorum, PLAINTEXT for
clients and between brokers, SSL and SASL_SSL when a test CA is given) and its log4j2 setup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stream.devtools.certificates import TestCA
from stream.devtools.embedded import free_port

# Settings that make a test broker answer as fast as the tests wait: no 3 s hold on a new
# group's first join (group.initial.rebalance.delay.ms), session timeouts down to 1 s (the
# tests' workers use 2 s; Kafka's floor is 6 s), small internal topics, a log cleaner that looks
# every second, retention checked every second, topics created only on purpose.
TEST_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.num.partitions": "4",
    "log.cleaner.backoff.ms": "1000",
    "log.retention.check.interval.ms": "1000",
    "num.partitions": "1",
    "auto.create.topics.enable": "false",
}

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


@dataclass
class KafkaNode:
    node_id: int
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    ssl_port: int = field(default_factory=free_port)
    sasl_ssl_port: int = field(default_factory=free_port)


def server_properties(
    node: KafkaNode,
    nodes: Sequence[KafkaNode],
    data_dir: Path,
    ca: TestCA | None,
    extra: Mapping[str, str],
) -> str:
    """``node``'s server.properties in a quorum of ``nodes``; replication uses every node (at
    most 3), ``min.insync.replicas`` 2 from 2 nodes on. ``extra`` overrides any setting."""
    n = len(nodes)
    voters = ",".join(f"{x.node_id}@127.0.0.1:{x.controller_port}" for x in nodes)
    listeners = {"PLAINTEXT": node.port, "CONTROLLER": node.controller_port}
    if ca is not None:
        listeners |= {"SSL": node.ssl_port, "SASL_SSL": node.sasl_ssl_port}
    advertised = {k: v for k, v in listeners.items() if k != "CONTROLLER"}
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listeners": ",".join(f"{k}://127.0.0.1:{p}" for k, p in listeners.items()),
        "advertised.listeners": ",".join(f"{k}://127.0.0.1:{p}" for k, p in advertised.items()),
        "listener.security.protocol.map": ",".join(
            f"{k}:{'PLAINTEXT' if k == 'CONTROLLER' else k}" for k in listeners
        ),
        "log.dirs": str(data_dir),
        "default.replication.factor": str(min(n, 3)),
        "min.insync.replicas": str(min(n, 2)),
        "offsets.topic.replication.factor": str(min(n, 3)),
        "transaction.state.log.replication.factor": str(min(n, 3)),
        "transaction.state.log.min.isr": str(min(n, 2)),
        "share.coordinator.state.topic.replication.factor": str(min(n, 3)),
        "share.coordinator.state.topic.min.isr": str(min(n, 2)),
        **TEST_SETTINGS,
        **(security_settings(ca) if ca is not None else {}),
        **extra,
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def security_settings(ca: TestCA) -> dict[str, str]:
    """TLS with the test CA's server certificate; SCRAM-SHA-512 on the SASL_SSL listener (its
    users are created when the storage is formatted). No client certificates, no authorizer."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(ca.keystore),
        "ssl.keystore.password": ca.keystore_password,
        "ssl.key.password": ca.keystore_password,
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
    }
