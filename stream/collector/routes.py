"""The collector's aiohttp application: /v1/collect (with CORS), the snippet, the demo store,
its OpenAPI document, and /healthz, /readyz, /metrics."""

from __future__ import annotations

import logging
from importlib.resources import files

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from stream import __version__
from stream.collector.client_address import client_address
from stream.collector.errors import CollectError
from stream.collector.intake import Intake
from stream.collector.request_body import MAX_BODY_BYTES
from stream.collector.telemetry import CollectorTelemetry
from stream.collector.write_keys import KeyKind
from stream.settings import CollectorSettings
from stream.web.middleware import json_errors, request_metrics
from stream.web.ops_routes import install_ops_routes
from stream.web.readiness import Readiness

log = logging.getLogger(__name__)

_PACKAGE = files("stream.collector")
# The snippet at a URL of its release, cached for a year: a page can pin it with an SRI hash
# (README, "In the page"; tests/unit/test_version.py checks the documented hash).
SNIPPET_PATH = f"/v1/upsell-{__version__}.js"
_CONTENT_TYPES = ("application/json", "text/plain")  # the contract's two (beacons send text)
_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_errors = json_errors(
    CollectError,
    _ERROR_CODES,
    lambda _exc: CollectError(
        503, "unavailable", "key store unavailable, retry", headers={"Retry-After": "1"}
    ),
)


def build_collector_web(
    *,
    intake: Intake,
    telemetry: CollectorTelemetry,
    readiness: Readiness,
    settings: CollectorSettings,
) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[_metrics(telemetry), _cors(), _errors]
    )
    routes = _Routes(intake, settings)
    r = app.router
    r.add_post("/v1/collect", routes.collect)
    r.add_route("OPTIONS", "/v1/collect", routes.preflight)
    r.add_get("/v1/upsell.js", routes.snippet)
    r.add_get(SNIPPET_PATH, routes.versioned_snippet)
    r.add_get("/v1/snippet-config", routes.snippet_config)
    r.add_get("/v1/openapi.json", routes.openapi)
    if settings.demo_key and settings.demo_shop:
        r.add_get("/demo-store", routes.demo_store)
    install_ops_routes(app, readiness, telemetry.registry)
    return app


def key_of(request: web.Request) -> str | None:
    """``Authorization: Bearer <key>`` or ``?key=<key>`` (beacons cannot set headers)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query.get("key") or None


class _Routes:
    def __init__(self, intake: Intake, settings: CollectorSettings) -> None:
        self.intake = intake
        self.settings = settings

    async def collect(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        key = await self.intake.authorise(key_of(request), origin)
        if origin is not None and key.kind is KeyKind.PUBLIC:
            request["cors_origin"] = origin
        if request.content_type not in _CONTENT_TYPES:
            raise CollectError(415, "unsupported_media_type", "send application/json or text/plain")
        body = await request.read()
        address = client_address(
            request.remote, request.headers.get("X-Forwarded-For"), self.settings.trusted_proxies
        )
        answer = await self.intake.collect(key, address, body)
        return web.json_response(answer, status=202)

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight: ``?key=`` must name a key that allows the origin, else 403 (without
        a key this answered 204 with the origin allowed, whatever the origin)."""
        origin = request.headers.get("Origin")
        key_text = request.query.get("key")
        if origin is None:
            raise CollectError(403, "origin_not_allowed", "a preflight carries an Origin")
        if not key_text:
            raise CollectError(403, "origin_not_allowed", "a preflight names its key (?key=)")
        await self.intake.authorise(key_text, origin)
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
        request["cors_origin"] = origin
        return response

    async def snippet(self, _request: web.Request) -> web.Response:
        return _static("upsell.js", "application/javascript", "public, max-age=300")

    async def versioned_snippet(self, _request: web.Request) -> web.Response:
        """Immutable, and readable cross-origin: a <script integrity=...> from another origin
        is only checked (and run) when the answer allows CORS."""
        response = _static("upsell.js", "application/javascript", "public, max-age=31536000")
        response.headers["Cache-Control"] += ", immutable"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    async def snippet_config(self, request: web.Request) -> web.Response:
        """What the snippet must know before it stores or sends anything: the key's shop and
        whether the shop asks for consent first. Only to the key's origins (CORS)."""
        origin = request.headers.get("Origin")
        # no Origin check: a same-origin GET carries none, and the answer says nothing a page
        # holding the public key cannot know; CORS still lets only the key's origins read it
        key_text = key_of(request)
        key = await self.intake.keys.lookup(key_text) if key_text else None
        if key is None:
            raise CollectError(401, "unauthorized", "unknown or revoked write key")
        if origin is not None and key.allows_origin(origin):
            request["cors_origin"] = origin
        consent = "required" if key.consent_required else "not_required"
        return web.json_response(
            {"shop_id": key.shop_id, "consent": consent},
            headers={"Cache-Control": "private, max-age=60"},
        )

    async def openapi(self, _request: web.Request) -> web.Response:
        return _static("openapi.json", "application/json", "no-cache")

    async def demo_store(self, _request: web.Request) -> web.Response:
        html = _PACKAGE.joinpath("static", "demo-store.html").read_text()
        html = html.replace("{{KEY}}", self.settings.demo_key)
        html = html.replace("{{SHOP}}", self.settings.demo_shop)
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-cache"}
        )


def _static(name: str, content_type: str, cache: str) -> web.Response:
    path = _PACKAGE.joinpath("static", name) if name != "openapi.json" else _PACKAGE.joinpath(name)
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": cache},
    )


def _metrics(telemetry: CollectorTelemetry) -> Middleware:
    def observe(_request: web.Request, route: str, status: str, _seconds: float) -> None:
        telemetry.requests.labels(route, status).inc()

    return request_metrics(observe)


def _cors() -> Middleware:
    """Answers carry ``Access-Control-Allow-Origin`` once the key allowed the origin, errors
    included, so the snippet can read a 429's ``Retry-After``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        origin = request.get("cors_origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            response.headers["Vary"] = "Origin"
        return response

    return middleware
