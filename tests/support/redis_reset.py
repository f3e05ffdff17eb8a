"""Emptying the suite's own redis-server between tests."""

from __future__ import annotations

import redis

from stream.devtools.embedded import EmbeddedRedis


def clean_redis(redis_server: EmbeddedRedis) -> str:
    """Empty OUR redis-server (restarted if a test left it stopped); returns its URL. Module
    fixtures that keep a worker for several tests call it once, at their start."""
    if not redis_server._answers():
        redis_server.start()
    client = redis.Redis(port=redis_server.port)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
