"""``DELETE /v1/shops/{shop_id}/subscribers/{subscriber_id}``: erase a subscriber (contract §7).

Only an admin token (``*``, every shop) may erase: a merchant's read token reads its shop's
numbers, an erasure is an operator's act and is recorded with the token's id (the first 12 hex
characters of its SHA-256, as ``token list`` shows it), never with the erased id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from schemas.fields import valid_shop_id
from stream.dates.clock import Clock
from stream.http.api.auth import Grant, token_id
from stream.http.api.errors import ApiError, bad_request
from stream.state.erasure import ErasureError, erase_subscriber
from stream.state.redis import AnyRedis


def erase_handler(
    redis: AnyRedis, clock: Clock, auth_enabled: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def erase(request: web.Request) -> web.Response:
        grant: Grant | None = request.get("grant")
        if auth_enabled and (grant is None or not grant.all_shops):
            raise ApiError(403, "forbidden", "only an admin token (*) may erase a subscriber")
        shop_id = request.match_info["shop_id"]
        if not valid_shop_id(shop_id):
            raise bad_request("bad_shop_id", "shop ids are 1-128 chars of [A-Za-z0-9._:-]")
        owner: str | None = request.get("owner")  # the token's digest (routes.py: _auth)
        by = f"token:{token_id(owner) if owner else 'none'}" if auth_enabled else "api (auth off)"
        try:
            done = await erase_subscriber(
                redis,
                shop_id,
                request.match_info["subscriber_id"],
                by=by,
                via="api",
                now=clock(),
            )
        except ErasureError as exc:
            raise bad_request("bad_subscriber_id", str(exc), "subscriber_id") from None
        return web.json_response({"shop_id": shop_id, "erased": True, **done.record()})

    return erase
