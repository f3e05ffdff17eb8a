"""What the tests ask of a broker, and the users of the secured Apache Kafka cluster (the
``kafka_cluster`` fixture in tests/conftest.py)."""

from __future__ import annotations

from typing import Protocol


class Broker(Protocol):
    """What a test needs of any broker: where clients connect."""

    @property
    def bootstrap(self) -> str: ...


KAFKA_USERS = {"upsell-worker": "worker-secret", "upsell-admin": "admin-secret"}
