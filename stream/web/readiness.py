"""What a server reports on ``/readyz``: whether it can answer, and the checks that say why.

Every server has one :class:`Readiness` (the worker's and the ``api`` role's in
stream/http/readiness.py, which also answer ``/readyz/counting``; the collector's in
stream/collector/readiness.py); the routes that serve it are stream/web/ops_routes.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from stream.state.redis import RETRIABLE

# (ready, checks): the answer is 200 ``ready`` or 503 ``not_ready``, with the checks by name
Checks = tuple[bool, dict[str, object]]


class Readiness(Protocol):
    async def check(self) -> Checks: ...


async def answers_within(ping: Callable[[], Awaitable[object]], timeout_s: float) -> bool:
    """Whether ``ping()`` answers truthy within ``timeout_s``; Redis gone or slow is False."""
    try:
        return bool(await asyncio.wait_for(ping(), timeout_s))
    except (TimeoutError, *RETRIABLE):
        return False
