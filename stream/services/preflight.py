"""What a process checks before it starts a service: Kafka's TLS and SASL accept us, Redis
accepts our password and is set up not to lose counts. A refusal is one line and exit 2
(stream/cli.py); a broker or Redis that does not answer yet is waited for by the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from redis import exceptions as rx

from stream.kafka.preflight import KafkaRefused, check_kafka
from stream.settings import Settings
from stream.state.connection import RedisUnsafe, check_redis_config, open_redis
from stream.state.redis import RETRIABLE

log = logging.getLogger(__name__)


class StartRefused(Exception):
    """Retrying cannot help: the message says what to change."""


async def preflight(settings: Settings, *, redis_config: bool = True) -> None:
    """Raise :class:`StartRefused` when Kafka or Redis refuses us (or Redis would lose counts
    and ``redis_config``); return otherwise."""
    try:
        await check_kafka(settings.kafka)
    except KafkaRefused as exc:
        raise StartRefused(str(exc)) from None
    conn = settings.redis
    client = open_redis(conn)
    try:
        await client.ping()
        if redis_config:
            await check_redis_config(client, conn)
    except RedisUnsafe as exc:
        raise StartRefused(f"Redis: {exc}") from None
    except rx.AuthenticationError as exc:
        raise StartRefused(f"Redis refused the password: {exc}") from None
    except RETRIABLE as exc:
        log.warning("Redis not reachable yet (%s); the services will wait", exc)
    finally:
        await client.aclose()


def run_apart(check: Coroutine[Any, Any, None]) -> None:
    """Run ``check`` on a loop of its own, closed after, leaving no loop set as current (Faust
    builds and runs its own afterwards)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(check)
    finally:
        loop.close()
