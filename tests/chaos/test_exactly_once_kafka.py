"""The kill -9 and rebalance runs of test_exactly_once.py, both engines, on Apache Kafka (one
node, tests/conftest.py's ``kafka``) instead of Tansu: the same test functions, with this
module's ``broker`` in place of the session's Tansu (conftest's ``created_topics`` then creates
the topics on Kafka too).

In ``make chaos``: the four runs took 836 s here (a Kafka node's start 70 s of it) while 8 agents
shared the 2 cores (load 20-40), longer than any test file of ``make test``, whose wall time is
that of its longest process. The Tansu runs of the same functions stay in ``make test``."""

from __future__ import annotations

import pytest

from stream.devtools.apache_kafka import KafkaCluster
from tests.integration.test_exactly_once import (
    redis_client,
    test_kill_9_three_times_while_events_flow,
    test_rebalance_between_two_workers,
)

# 600 s: the first test of a process also waits for the Kafka node to start (up to ~200 s
# while 8 agents shared 2 cores; ~25 s alone), and pytest-timeout counts fixture set-up
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

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
