"""API errors: every client mistake becomes ``{"error": {"code", "message"}}`` with its status."""

from __future__ import annotations

from aiohttp import web

from stream.web.middleware import HttpError


class ApiError(HttpError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message)
        self.param = param
        self.headers = headers or {}

    def response(self) -> web.Response:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.param:
            body["param"] = self.param
        return web.json_response({"error": body}, status=self.status, headers=self.headers)


def bad_request(code: str, message: str, param: str | None = None) -> ApiError:
    return ApiError(400, code, message, param)
