"""The one place a :class:`KafkaConnection` becomes client options: aiokafka's keyword arguments
(producers, consumers, the admin) and the TLS context Faust's ``broker_credentials`` carry
(stream.kafka.faust_clients). Every client of the service is built through here, so TLS and
SASL cannot be forgotten on one of them."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from stream.settings.kafka import KafkaConnection, KafkaSecurity

# A plain bootstrap string means the embedded broker of dev, the tests and the bench.
KafkaTarget = KafkaConnection | str


def connection_of(target: KafkaTarget) -> KafkaConnection:
    return KafkaConnection.plaintext(target) if isinstance(target, str) else target


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context: the given CA (else the system's), hostname checked, the client
    certificate for mutual TLS when set."""
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(security.ca_file) if security.ca_file else None,
        certfile=str(security.cert_file) if security.cert_file else None,
        keyfile=str(security.key_file) if security.key_file else None,
    )
    return context


def client_options(target: KafkaTarget) -> dict[str, Any]:
    """aiokafka's connection keywords for ``target`` (bootstrap, protocol, TLS, SASL)."""
    conn = connection_of(target)
    s = conn.security
    options: dict[str, Any] = {
        "bootstrap_servers": conn.bootstrap,
        "security_protocol": s.protocol,
    }
    if s.tls:
        options["ssl_context"] = ssl_context(s)
    if s.sasl:
        options["sasl_mechanism"] = s.sasl_mechanism
        options["sasl_plain_username"] = s.sasl_username
        options["sasl_plain_password"] = s.sasl_password
    return options


def producer_options(target: KafkaTarget) -> dict[str, Any]:
    """Connection keywords plus durability: every producer waits for all in-sync replicas
    (acks=all; the topics ask for min.insync.replicas), idempotent where the broker allows it.
    A dead letter acknowledged by the leader alone (acks=1, before this) could vanish when that
    leader failed before a follower copied it."""
    conn = connection_of(target)
    return {
        **client_options(conn),
        "acks": "all",
        "enable_idempotence": conn.security.idempotence,
    }
