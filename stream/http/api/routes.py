"""The query API's routes (contract §4) and the middlewares in front of them: errors, request
metrics, CORS, auth, each token's share."""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from stream import __version__
from stream.dates.clock import Clock
from stream.http.api.auth import Grants, digest
from stream.http.api.erase import erase_handler
from stream.http.api.errors import ApiError
from stream.http.api.handlers import Handlers
from stream.http.api.limits import HEAVY, REQUESTS, RETRY_AFTER_S, STREAMS, HeavyQueries, Shares
from stream.http.api.live import LiveStreams, StillAllowed
from stream.settings import Settings
from stream.state.reader import StateReader
from stream.state.redis import AnyRedis, pool_busy
from stream.telemetry import Telemetry
from stream.web.middleware import ERROR_CODE, json_errors, request_metrics

log = logging.getLogger(__name__)


def _openapi_doc() -> bytes:
    """The API description with ``info.version`` the release's (stream/__init__.py)."""
    doc = json.loads(files("stream.http").joinpath("openapi.json").read_text())
    doc["info"]["version"] = __version__
    return json.dumps(doc, indent=2).encode()


OPENAPI = _openapi_doc()
# The /v1 paths served without a token (paths outside /v1, such as /healthz, /metrics and the
# dashboard, never need one).
_PUBLIC = frozenset({"/v1/openapi.json"})


def install_api(
    app: web.Application,
    *,
    redis: AnyRedis,
    settings: Settings,
    telemetry: Telemetry,
    clock: Clock,
    tokens: Grants | None,
) -> None:
    """Add the /v1 routes and the middlewares to ``app`` (before it starts)."""
    reader = StateReader(redis)
    shares = _shares(settings)
    heavy = HeavyQueries(settings.api_max_heavy_queries, shares)
    h = Handlers(
        reader,
        clock,
        settings.retention_days,
        max_range_days=settings.api_max_range_days,
        heavy=heavy,
    )

    async def overview(request: web.Request) -> dict[str, Any]:
        return (await h.overview_doc(request))[1]

    async def groups(request: web.Request) -> dict[str, Any]:
        return (await h.groups_doc(request))[2]

    live = LiveStreams(
        reader,
        overview,
        groups,
        heavy=heavy,
        max_streams=settings.live_max_streams,
        heartbeat_s=settings.live_heartbeat_s,
        max_lifetime_s=settings.live_max_lifetime_s,
        still_allowed=_still_allowed(tokens if settings.auth_enabled else None),
    )
    app.on_shutdown.append(live.on_shutdown)
    telemetry.live_streams.set_function(lambda: live.open)
    telemetry.heavy_queries.set_function(lambda: heavy.running)
    app.middlewares.extend(
        [
            _metrics(telemetry),
            _cors(settings.cors_origins),  # outside json_errors: error responses carry CORS too
            json_errors(ApiError, {404: "not_found", 405: "method_not_allowed"}, _unavailable),
            _auth(tokens if settings.auth_enabled else None, settings.auth_enabled),
            _request_share(shares),
            _heavy_slots(heavy),
        ]
    )
    _routes(app, h, live)
    app.router.add_delete(
        "/v1/shops/{shop_id}/subscribers/{subscriber_id}",
        erase_handler(redis, clock, settings.auth_enabled),
    )


def _routes(app: web.Application, h: Handlers, live: LiveStreams) -> None:
    r = app.router
    r.add_get("/v1/openapi.json", _openapi)
    r.add_get("/v1/shops", h.shops)
    r.add_get("/v1/shops/{shop_id}/overview", h.overview)
    r.add_get("/v1/shops/{shop_id}/timeseries", h.timeseries)
    r.add_get("/v1/shops/{shop_id}/groups", h.groups)
    r.add_get("/v1/shops/{shop_id}/groups/{group_id}", h.group)
    r.add_get("/v1/shops/{shop_id}/conversions", h.conversions)
    r.add_get("/v1/shops/{shop_id}/live", live.handle)


def _shares(settings: Settings) -> Shares:
    """Each token's share of this process (contract §4)."""
    return Shares(
        {
            REQUESTS: settings.token_max_requests,
            HEAVY: settings.token_max_heavy_queries,
            STREAMS: settings.token_max_streams,
        }
    )


def _unavailable(exc: BaseException) -> ApiError:
    """Redis gone: 503 ``unavailable``; every API connection taken for ``api_busy_wait_ms``:
    503 ``busy``. Both carry ``Retry-After`` (contract §4)."""
    if pool_busy(exc):
        return ApiError(
            503,
            "busy",
            "every connection of this server is taken; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return ApiError(
        503,
        "unavailable",
        "state store unavailable, retry",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _openapi(_request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI, content_type="application/json")


def _metrics(telemetry: Telemetry) -> Middleware:
    def observe(request: web.Request, route: str, status: str, seconds: float) -> None:
        telemetry.api_request_seconds.labels(route, request.method, status).observe(seconds)
        if status == "503" and request.get(ERROR_CODE) == "busy":
            telemetry.api_busy.labels(route).inc()

    return request_metrics(observe)


def _cors(origins: tuple[str, ...]) -> Middleware:
    allowed = set(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        ok = origin is not None and ("*" in allowed or origin in allowed)
        if request.method == "OPTIONS" and ok:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if ok:
            assert origin is not None
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    return middleware


def _heavy_slots(heavy: HeavyQueries) -> Middleware:
    """Give back the heavy-query slot a handler took, however it ends."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            if request.get("heavy"):
                heavy.leave(request.get("owner"))

    return middleware


def _auth(tokens: Grants | None, enabled: bool) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not enabled or not path.startswith("/v1/") or path in _PUBLIC:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        grant = tokens.grant(token.strip()) if tokens and scheme.lower() == "bearer" else None
        if grant is None:
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
        shop_id = request.match_info.get("shop_id")
        if shop_id is not None and not grant.allows(shop_id):
            raise ApiError(403, "forbidden", "this token may not read that shop")
        request["grant"] = grant
        # the token's digest: the key of its fair share; its id names it in erasure records
        request["owner"] = digest(token.strip())
        return await handler(request)

    return middleware


def _request_share(shares: Shares) -> Middleware:
    """Each token's requests in flight, up to its share (429 past it); a live stream holds a
    stream of the token's share instead (stream/http/api/live.py)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        owner = request.get("owner")
        if owner is None or request.path.endswith("/live"):
            return await handler(request)
        shares.take(REQUESTS, owner)
        try:
            return await handler(request)
        finally:
            shares.give(REQUESTS, owner)

    return middleware


def _still_allowed(tokens: Grants | None) -> StillAllowed:
    """Whether a live stream's token still reads its shop (asked before every push)."""

    def allowed(request: web.Request) -> bool:
        if tokens is None:
            return True
        _scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = tokens.grant(token.strip())
        return grant is not None and grant.allows(request.match_info["shop_id"])

    return allowed
