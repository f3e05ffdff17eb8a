"""A refused request: its status, the contract's error code, and what the client needs to act."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from stream.web.middleware import HttpError


class CollectError(HttpError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        rejected: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(status, code, message)
        self.headers = dict(headers or {})
        self.rejected = rejected

    def response(self) -> web.Response:
        body: dict[str, object] = {"error": {"code": self.code, "message": self.message}}
        if self.rejected is not None:
            body["rejected"] = self.rejected
        return web.json_response(body, status=self.status, headers=self.headers)
