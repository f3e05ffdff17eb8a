"""The start-up check of the Kafka connection: a refused certificate, a CA that does not sign
the broker's, wrong SASL credentials or a mechanism the broker does not offer end the process with
one line and exit 2 (stream/cli.py), before any service starts. A broker that does not answer
yet is no such error: the services wait for it as before.

Without this, aiokafka logs a refused TLS handshake or SASL authentication as "Unable connect
to ..." and raises KafkaConnectionError("Unable to bootstrap ..."), the same as a broker that is
down: every client retried it forever with a warning about reachability, and Faust's producer
ended the worker with a traceback (seen on Apache Kafka 4.1 with a wrong SCRAM password)."""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from stream.kafka.security import KafkaTarget, client_options, connection_of
from stream.settings.kafka import KafkaConnection

log = logging.getLogger(__name__)

SASL_REFUSALS = (
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


class KafkaRefused(Exception):
    """The broker answered and refused this client: retrying cannot help."""


async def check_kafka(target: KafkaTarget, timeout_s: float = 10.0) -> bool:
    """Raise :class:`KafkaRefused` when TLS or SASL is refused; True when a bootstrap server
    accepted the connection (TLS handshake and SASL authentication included), False when none
    answered within ``timeout_s`` (not an error).

    One connection per bootstrap server, as aiokafka's own bootstrap makes it, but with its
    errors: aiokafka's bootstrap catches them (a wrong SCRAM password, a refused certificate)
    and raises KafkaConnectionError("Unable to bootstrap ..."), as for a broker that is down."""
    conn = connection_of(target)
    options = {k: v for k, v in client_options(conn).items() if k != "bootstrap_servers"}
    for server in conn.bootstrap.split(","):
        host, _, port = server.rpartition(":")
        try:
            connected = await asyncio.wait_for(
                create_conn(
                    host.strip("[]"),
                    int(port),
                    client_id="upsell-preflight",
                    request_timeout_ms=int(timeout_s * 1000),
                    **options,
                ),
                timeout_s,
            )
        except ssl.SSLError as exc:
            raise KafkaRefused(
                f"Kafka {server}: TLS handshake failed: {_reason(exc)}{_hint(conn, exc)}"
            ) from None
        except SASL_REFUSALS as exc:
            s = conn.security
            raise KafkaRefused(
                f"Kafka {server} refused SASL {s.sasl_mechanism} for user "
                f"{s.sasl_username!r}: {_reason(exc)}"
            ) from None
        except (KafkaConnectionError, OSError, TimeoutError) as exc:
            log.debug("Kafka %s not reachable: %s", server, exc)
            continue
        except KafkaError as exc:
            raise KafkaRefused(f"Kafka {server} refused the client: {_reason(exc)}") from None
        connected.close()
        return True
    log.warning("Kafka %s not reachable yet; the services will wait", conn.bootstrap)
    return False


def _hint(conn: KafkaConnection, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        ca = conn.security.ca_file
        return f" (UPSELL_KAFKA_CA_FILE={ca})" if ca else " (no UPSELL_KAFKA_CA_FILE: system CAs)"
    if conn.security.cert_file is None:
        return " (the broker may want a client certificate: UPSELL_KAFKA_CERT_FILE/_KEY_FILE)"
    return ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    text = getattr(exc, "reason", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__
