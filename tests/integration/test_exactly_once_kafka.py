"""The kill -9 and rebalance runs of test_exactly_once.py, both engines, on Apache Kafka (one
node, tests/conftest.py's ``kafka``) instead of Tansu: the same test functions, with this
module's ``broker`` in place of the session's Tansu (conftest's ``created_topics`` then creates
the topics on Kafka too). A file of its own so that ``make test`` (whole files per process)
runs them in another process beside the Tansu runs, not after them."""

from __future__ import annotations

import pytest

from stream.devtools.apache_kafka import KafkaCluster
from tests.integration.test_exactly_once import (
    redis_client,
    test_kill_9_three_times_while_events_flow,
    test_rebalance_between_two_workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# collected here as this module's own tests, with this module's fixtures
__all__ = [
    "redis_client",
    "test_kill_9_three_times_while_events_flow",
    "test_rebalance_between_two_workers",
]


@pytest.fixture
def broker(kafka: KafkaCluster) -> KafkaCluster:
    """This module's tests run on Apache Kafka."""
    return kafka
