"""Faust's Kafka clients made like ours, for the worker's Faust app whatever the engine: Faust
hosts the worker and runs the agents of the settings-like topics under the batch engine too.

- Faust hard-codes ``fetch_max_wait_ms=1500`` on its consumer; on a quiet topic an event then
  waits up to ~0.7 s on the broker (FACTS.md). We want ~100 ms: freshness is a product promise.
  Only Tansu needs this: it does not answer a waiting fetch when data arrives (re-measured
  2026-12-07, one record every 0.3 s: 304-509 ms with a 1,500 ms wait, 8-45 ms with 100 ms);
  Apache Kafka 4.1 answers at once (24-177 ms with 1,500 ms, on a machine at load 28).
- Faust reads ``read_uncommitted`` unless it runs its own transactions; every consumer of ours
  reads ``read_committed`` (aborted writes of a transactional producer are never counted).
- :func:`faust_credentials`: TLS and SASL of the service's Kafka connection, Faust's way.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream.kafka.clients import ISOLATION_LEVEL
from stream.kafka.security import KafkaTarget, connection_of, ssl_context

_PATCHED_ATTR = "_upsell_fetch_wait_ms"


def set_fetch_max_wait_ms(wait_ms: int) -> None:
    """Make Faust's worker consumer use ``wait_ms`` instead of its hard-coded 1500 ms."""
    thread_cls: Any = faust_aiokafka.AIOKafkaConsumerThread
    setattr(thread_cls, _PATCHED_ATTR, wait_ms)
    if getattr(thread_cls, "_upsell_original_create", None) is not None:
        return
    original = thread_cls._create_worker_consumer
    thread_cls._upsell_original_create = original

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = getattr(type(self), _PATCHED_ATTR)
        consumer._isolation_level = ISOLATION_LEVEL  # read before start() builds its fetcher
        return consumer

    thread_cls._create_worker_consumer = create_worker_consumer


def faust_credentials(target: KafkaTarget) -> faust.auth.Credentials | None:
    """Faust's ``broker_credentials`` for the same connection (None: plaintext)."""
    conn = connection_of(target)
    s = conn.security
    if s.sasl:
        return faust.SASLCredentials(
            username=s.sasl_username,
            password=s.sasl_password,
            mechanism=s.sasl_mechanism,
            ssl_context=ssl_context(s) if s.tls else None,
        )
    if s.tls:
        return faust.SSLCredentials(ssl_context(s))
    return None
