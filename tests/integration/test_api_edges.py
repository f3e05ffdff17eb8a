"""The API at its edges, from outside (a worker subprocess over raw HTTP): hypothesis sends
parameters, paths and headers beyond the OpenAPI schema, and every answer is a 2xx or a 4xx
with the error document, never a 500; error responses carry CORS headers too; the range cap and
the cap on concurrent heavy queries answer 400 and 503 with Retry-After."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.workers import WorkerProcess
from stream.http.api.tokens_cli import add_token
from stream.settings import Topics
from tests.support import openapi_check
from tests.support.e2e import worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ORIGIN = "https://dash.example"
MAX_RANGE_DAYS = 100
ROUTES = ("overview", "timeseries", "groups", "groups/g1", "conversions")
PARAMS = (
    "period",
    "date",
    "from",
    "to",
    "compare",
    "compare_from",
    "compare_to",
    "interval",
    "limit",
    "cursor",
)


class Api:
    def __init__(self, worker: WorkerProcess, token: str) -> None:
        self.port = worker.port
        self.token = token

    def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """GET with raw header bytes (http.client sends bytes values as they are)."""
        query = urllib.parse.urlencode(params or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest("GET", path + ("?" + query if query else ""))
            sent = {"Authorization": b"Bearer " + self.token.encode(), **(headers or {})}
            for name, value in sent.items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def api(
    broker: EmbeddedBroker, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("edges")
    tokens = tmp / "tokens"
    admin = add_token(tokens, ["*"])
    env = worker_env(
        broker.bootstrap,
        redis_server.url,
        Topics("edges."),
        "batch",
        UPSELL_AUTH="on",
        UPSELL_API_TOKENS=str(tokens),
        UPSELL_CORS_ORIGINS=ORIGIN,
        UPSELL_API_MAX_RANGE_DAYS=str(MAX_RANGE_DAYS),
        UPSELL_API_MAX_HEAVY_QUERIES="1",
        # the process-wide cap is under test here, not one token's share of requests in flight
        UPSELL_TOKEN_MAX_REQUESTS="100",
    )
    (w,) = workers(env, Path(tmp), 1)
    try:
        w.start().wait_ready()
        yield Api(w, admin)
    finally:
        w.stop()


def check_error(status: int, headers: dict[str, str], body: bytes, context: object) -> None:
    assert 400 <= status < 500 or status == 503, (status, context, body[:300])
    assert body.startswith(b"{"), (status, context, body[:300])
    openapi_check.validate("Error", json.loads(body))
    assert headers.get("access-control-allow-origin") == ORIGIN, (status, context)


def test_the_known_500s_are_4xx_with_cors(api: Api) -> None:
    origin = {"Origin": ORIGIN.encode()}
    cases = [
        ("/v1/shops/s/conversions", {"limit": "\u00b2"}, {}, 400),
        ("/v1/shops/s/conversions", {"limit": "\u0661"}, {}, 400),  # Arabic-Indic one
        ("/v1/shops/s/overview", {}, {"Authorization": "Bearer \u00e9\u00e8".encode()}, 401),
        ("/v1/shops/s/overview", {}, {"Authorization": b"Bearer \xff\xfe"}, 401),
        ("/v1/shops/s/overview", {"period": "nope"}, {}, 400),
        ("/v1/no-such-route", {}, {}, 404),
    ]
    for path, params, headers, want in cases:
        status, got, body = api.get(path, params, {**origin, **headers})
        assert status == want, (path, params, headers, body[:300])
        check_error(status, got, body, (path, params))


def test_a_range_longer_than_the_cap_is_400(api: Api) -> None:
    today = datetime.now(UTC).date()
    long_from = (today - timedelta(days=MAX_RANGE_DAYS)).isoformat()
    ok_from = (today - timedelta(days=MAX_RANGE_DAYS - 1)).isoformat()
    period = {"period": "custom", "from": long_from, "to": today.isoformat()}
    status, headers, body = api.get("/v1/shops/s/overview", period, {"Origin": ORIGIN.encode()})
    assert status == 400 and json.loads(body)["error"]["code"] == "range_too_long", body
    check_error(status, headers, body, period)
    compare = {
        "period": "today",
        "compare": "custom",
        "compare_from": long_from,
        "compare_to": today.isoformat(),
    }
    status, _, body = api.get("/v1/shops/s/overview", compare)
    assert status == 400 and json.loads(body)["error"]["param"] == "compare_to", body
    status, _, body = api.get("/v1/shops/s/overview", {**period, "from": ok_from})
    assert status == 200, body


def test_concurrent_heavy_queries_beyond_the_cap_get_503_with_retry_after(api: Api) -> None:
    today = datetime.now(UTC).date()
    heavy = {
        "period": "custom",
        "from": (today - timedelta(days=MAX_RANGE_DAYS - 1)).isoformat(),
        "to": today.isoformat(),
        "compare": "previous_period",
    }
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda _: api.get("/v1/shops/s/timeseries", heavy), range(96)))
    statuses = sorted({status for status, _, _ in answers})
    assert set(statuses) <= {200, 503}, statuses
    busy = [(headers, body) for status, headers, body in answers if status == 503]
    assert busy, "96 concurrent heavy queries with a cap of 1: none was refused"
    for headers, body in busy:
        assert int(headers["retry-after"]) >= 1
        assert json.loads(body)["error"]["code"] == "busy"
    assert any(status == 200 for status, _, _ in answers)
    assert api.get("/v1/shops/s/timeseries", heavy)[0] == 200  # the cap frees its slots


# Control characters are refused by aiohttp's HTTP parser (a plain-text 400, before any route):
# header values are any other bytes, non-ASCII and non-UTF-8 included.
header_bytes = st.binary(max_size=80).filter(lambda b: all(31 < c != 127 for c in b))
text = st.text(max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES),
    shop=st.one_of(st.sampled_from(["s", "shop-a"]), text.filter(lambda s: "/" not in s)),
    params=st.dictionaries(st.one_of(st.sampled_from(PARAMS), text), text, max_size=5),
    auth=st.one_of(st.none(), header_bytes, header_bytes.map(lambda b: b"Bearer " + b)),
    extra=st.dictionaries(
        st.sampled_from(["Origin", "Accept", "If-None-Match", "X-Forwarded-For", "Cookie"]),
        header_bytes,
        max_size=3,
    ),
)
def test_fuzzed_requests_never_answer_5xx(
    api: Api,
    route: str,
    shop: str,
    params: dict[str, str],
    auth: bytes | None,
    extra: dict[str, bytes],
) -> None:
    path = f"/v1/shops/{urllib.parse.quote(shop, safe='')}/{route}"
    headers = {**extra, "Origin": ORIGIN.encode()}
    if auth is not None:
        headers["Authorization"] = auth
    status, got, body = api.get(path, params, headers)
    if status == 200:
        assert json.loads(body)
    else:
        check_error(status, got, body, (path, params, headers))
