"""The start-up check of the Kafka connection: a refused certificate, a CA that does not sign
the broker's, wrong SASL credentials or a mechanism the broker does not offer end the process with
one line and exit 2 (stream/cli.py), before any service starts. A broker that does not answer
yet is no such error: the services wait for it as before.

Without this, aiokafka logs a refused TLS handshake as "Unable connect to ..." and raises
KafkaConnectionError("Unable to bootstrap ..."), the same as a broker that is down, and every
client retried it forever with a warning about reachability."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from stream.kafka.clients import make_admin
from stream.kafka.security import KafkaTarget, connection_of, ssl_context
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
    """Raise :class:`KafkaRefused` when TLS or SASL is refused; True when the broker accepted
    a metadata request, False when no broker answered within ``timeout_s`` (not an error)."""
    conn = connection_of(target)
    if conn.security.tls and not await _tls_accepted(conn, timeout_s):
        return False
    admin = make_admin(conn, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
    except SASL_REFUSALS as exc:
        s = conn.security
        raise KafkaRefused(
            f"Kafka {conn.bootstrap} refused SASL {s.sasl_mechanism} for user "
            f"{s.sasl_username!r}: {_reason(exc)}"
        ) from None
    except (KafkaConnectionError, OSError, TimeoutError) as exc:
        log.warning("Kafka %s not reachable yet (%s); the services will wait", conn.bootstrap, exc)
        return False
    except KafkaError as exc:
        raise KafkaRefused(f"Kafka {conn.bootstrap} refused the client: {_reason(exc)}") from None
    finally:
        await admin.close()
    return True


async def _tls_accepted(conn: KafkaConnection, timeout_s: float) -> bool:
    """A TLS handshake with the first bootstrap server that answers: raises KafkaRefused when
    the certificate is refused (either way); False when none answered."""
    context = ssl_context(conn.security)
    for server in conn.bootstrap.split(","):
        host, _, port = server.rpartition(":")
        host = host.strip("[]")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port), ssl=context, server_hostname=host),
                timeout_s,
            )
        except ssl.SSLError as exc:
            raise KafkaRefused(
                f"Kafka {server}: TLS handshake failed: {_reason(exc)}" + _hint(conn, exc)
            ) from None
        except (OSError, TimeoutError):
            continue
        writer.close()
        # the broker may reset a connection we close without a request
        with contextlib.suppress(OSError):
            await writer.wait_closed()
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
