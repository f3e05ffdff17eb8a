"""The web layer every HTTP server of the project stands on (the worker's, the ``api`` role's
and the collector's): the JSON error answer and the request metrics (``middleware``), the
readiness a server reports (``readiness``), the operator routes ``/healthz``, ``/readyz`` and
``/metrics`` (``ops_routes``), and serving an app until SIGTERM (``serve``).

Handlers and middlewares are typed with aiohttp's own ``Handler`` and ``Middleware``
(``aiohttp.typedefs``); nothing here knows the /v1 API, the dashboard or the collector's
routes, which stand above it (``stream.http``, ``stream.collector``).
"""
