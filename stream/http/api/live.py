"""GET /v1/shops/{shop_id}/live: the overview (and with ``groups=1`` the groups) pushed as
Server-Sent Events when the shop's counters change (contract §4.4).

Any worker serves it: each stream reads the shop's progress hash in Redis (it changes whenever
a batch of the shop's events is applied, by whichever worker) every ``interval_s``, and only
then recomputes the documents, pushing those whose figures differ from the last push. So a push
comes at most once per interval. A comment line every ``heartbeat_s`` keeps proxies from closing
an idle stream. A process holds at most ``max_streams`` open streams, and one token at most
its share of them (stream/http/api/limits.py); one more gets 429. Both are taken before the
first await, so simultaneous requests cannot pass the cap together.

Auth is the other routes' (the dashboard reads the stream with fetch, which sends the header).
The token is asked again before every push: a revoked token's stream ends. A stream ends after
``max_lifetime_s`` anyway; the client reconnects after the ``retry:`` it was given, and the
reconnection is checked like a new stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from stream.http.api.errors import ApiError
from stream.http.api.limits import RETRY_AFTER_S, STREAMS, HeavyQueries
from stream.state.reader import StateReader

DocBuilder = Callable[[web.Request], Awaitable[dict[str, Any]]]
StillAllowed = Callable[[web.Request], bool]
RECONNECT_MS = 2000
_VOLATILE = ("as_of",)


class LiveStreams:
    def __init__(
        self,
        reader: StateReader,
        overview: DocBuilder,
        groups: DocBuilder,
        *,
        heavy: HeavyQueries,
        max_streams: int,
        heartbeat_s: float,
        max_lifetime_s: float = 3600.0,
        still_allowed: StillAllowed = lambda _request: True,
        interval_s: float = 1.0,
    ) -> None:
        self.reader = reader
        self.overview = overview
        self.groups = groups
        self.heavy = heavy
        self.max_streams = max_streams
        self.heartbeat_s = heartbeat_s
        self.interval_s = interval_s
        self.max_lifetime_s = max_lifetime_s
        self.still_allowed = still_allowed
        self.open = 0
        self.closing = asyncio.Event()

    async def on_shutdown(self, _app: web.Application) -> None:
        self.closing.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        owner = request.get("owner")
        self._take(owner)
        try:
            builders = {"overview": self.overview}
            if request.query.get("groups") in ("1", "true"):
                builders["groups"] = self.groups
            first = {name: await self._build(build, request) for name, build in builders.items()}
            response = web.StreamResponse(
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            )
            response.content_type = "text/event-stream"
            response.charset = "utf-8"
            try:
                await response.prepare(request)
                await self._run(request, response, builders, first)
            except (ConnectionResetError, asyncio.CancelledError):
                pass
        finally:
            self.open -= 1
            self.heavy.shares.give(STREAMS, owner)
        return response

    def _take(self, owner: str | None) -> None:
        """Take a stream of the process and of the token's share, in one step (no await)."""
        if self.open >= self.max_streams:
            raise ApiError(
                429,
                "too_many_streams",
                "this server has no room for another stream",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.heavy.shares.take(STREAMS, owner)
        self.open += 1

    async def _build(self, build: DocBuilder, request: web.Request) -> dict[str, Any]:
        """One document (its 400s and 503s raise here); a heavy-query slot is held only while
        it is computed, not for the life of the stream."""
        try:
            return await build(request)
        finally:
            if request.get("heavy"):
                self.heavy.leave(request.get("owner"))
                request["heavy"] = False

    async def _run(
        self,
        request: web.Request,
        response: web.StreamResponse,
        builders: dict[str, DocBuilder],
        first: dict[str, dict[str, Any]],
    ) -> None:
        shop_id = request.match_info["shop_id"]
        await response.write(b"retry: %d\n\n" % RECONNECT_MS)
        last: dict[str, bytes] = {}
        for name, doc in first.items():
            last[name] = await _push(response, name, doc, None)
        signature = await self.reader.progress_signature(shop_id)
        beat = time.monotonic()
        ends = beat + self.max_lifetime_s
        while not self.closing.is_set():
            if request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(self.interval_s)
            if not self.still_allowed(request):
                await response.write(b"event: revoked\ndata: {}\n\n")
                return
            if time.monotonic() >= ends:  # the client reconnects after RECONNECT_MS
                return
            now = await self.reader.progress_signature(shop_id)
            if now != signature:
                signature = now
                for name, build in builders.items():
                    doc = await self._build(build, request)
                    last[name] = await _push(response, name, doc, last[name])
                beat = time.monotonic()
            elif time.monotonic() - beat >= self.heartbeat_s:
                await response.write(b": heartbeat\n\n")
                beat = time.monotonic()


async def _push(
    response: web.StreamResponse, name: str, doc: dict[str, Any], previous: bytes | None
) -> bytes:
    """Send ``doc`` as event ``name`` unless its figures equal the previous push's."""
    figures = orjson.dumps({k: v for k, v in doc.items() if k not in _VOLATILE})
    if figures != previous:
        data = orjson.dumps(doc)
        await response.write(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n")
    return figures
