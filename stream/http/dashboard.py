"""The built-in "Upgrade Groups" page: static files from the package, no build step."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

_STATIC = files("stream.http").joinpath("static")
_TYPES = {
    ".html": "text/html",
    ".js": "application/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".LICENSE": "text/plain",
}
_FILES = {"app.js", "app.css", "chart.js", "decisions.js", "live.js"}
# uPlot, as npm ships it (static/vendor/README.md says where from and how to update)
_VENDOR = {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"}


def install_dashboard(app: web.Application) -> None:
    async def index(_request: web.Request) -> web.Response:
        return _file("index.html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _FILES:  # a fixed list: no path can reach outside the package
            raise web.HTTPNotFound()
        return _file(name)

    async def vendor(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _VENDOR:
            raise web.HTTPNotFound()
        return _file(f"vendor/{name}")

    app.router.add_get("/", index)
    app.router.add_get("/dashboard", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/static/vendor/{name}", vendor)


def _file(name: str) -> web.Response:
    body = _STATIC.joinpath(name).read_bytes()
    suffix = name[name.rfind(".") :]
    return web.Response(
        body=body,
        content_type=_TYPES[suffix],
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        },
    )
