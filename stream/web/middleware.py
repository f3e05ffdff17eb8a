"""The aiohttp middlewares every HTTP server shares (the worker's /v1 API and the collector):
the JSON error answer (every refused or failed request becomes ``{"error": {"code",
"message", ...}}`` with its status) and the request metrics (each request's route template,
status and duration)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from stream.state.redis import RETRIABLE, pool_busy

log = logging.getLogger(__name__)


class HttpError(Exception):
    """A request refused with a status and one of the contract's error codes."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        raise NotImplementedError


# The request key holding the error code a refused request was answered with (the metrics read
# it: a deliberate 503 busy is not a failure).
ERROR_CODE = "upsell_error_code"


def json_errors(
    error: type[HttpError],
    codes: Mapping[int, str],
    unavailable: Callable[[BaseException], HttpError],
) -> Middleware:
    """A middleware answering ``error`` as raised, aiohttp's own 4xx (404, 405, ...) with the
    code in ``codes`` (else ``http_error``), Redis unavailable or its pool busy with
    ``unavailable(exc)`` (a 503), and anything else with a logged 500 ``internal``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except error as exc:
            request[ERROR_CODE] = exc.code
            return exc.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, codes.get(exc.status, "http_error"), exc.reason).response()
        except RETRIABLE as exc:
            if not pool_busy(exc):  # a full pool is load, answered 503 busy: not worth a line
                log.warning("redis unavailable while serving %s: %s", request.path, exc)
            return unavailable(exc).response()
        except Exception:
            log.exception("unexpected error serving %s", request.path)
            return error(500, "internal", "internal error").response()

    return middleware


def request_metrics(
    observe: Callable[[web.Request, str, str, float], None],
) -> Middleware:
    """A middleware calling ``observe(request, route, status, seconds)`` after every request:
    ``route`` is the route's template (``unmatched`` for none), ``status`` 500 if it raised."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            observe(request, route, str(status), time.perf_counter() - started)

    return middleware
