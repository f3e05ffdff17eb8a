"""What a log line may hold (stream/logging_setup.py): no secrets, tracebacks included, no line
a request can forge, and a request aiohttp refuses as one warning without a traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from aiohttp.http_exceptions import LineTooLong

from stream.logging_setup import JsonFormatter, RedactingFilter

KEY = "usk_" + "A" * 32


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.logging_setup")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def test_secrets_are_redacted_in_messages_and_tracebacks(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    logger.warning("GET /v1/collect?key=%s&x=1 token=abc Authorization: Basic dXNlcjpw", KEY)
    try:
        raise ValueError(f"bad header Authorization: Bearer tok.123 with {KEY}")
    except ValueError:
        logger.exception("failed")
    logger.error("a batch sent with %s was refused", KEY)
    text = out.getvalue()
    assert KEY not in text and "A" * 32 not in text
    assert "abc" not in text and "dXNlcjpw" not in text and "tok.123" not in text
    assert "key=[redacted]" in text and "usk_[redacted]" in text
    assert "Traceback" in text


def test_a_request_cannot_forge_a_log_line(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    logger.warning("unexpected error serving %s", "/v1/x\nERROR stream.auth: token leaked\r")
    text = out.getvalue()
    assert text.count("\n") == 1, text
    assert "\\x0aERROR stream.auth: token leaked\\x0d" in text


def test_a_refused_request_is_one_warning_without_traceback(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    _, out = lines
    server = logging.getLogger("aiohttp.server")
    handler = logging.getLogger("test.logging_setup").handlers[0]
    server.addHandler(handler)
    try:
        try:
            raise LineTooLong("GET /v1/collect?key=" + KEY + "x" * 9000, "8190")
        except LineTooLong as exc:
            server.exception("Error handling request from %s", "10.0.0.1", exc_info=exc)
    finally:
        server.removeHandler(handler)
    text = out.getvalue()
    assert text.startswith("WARNING aiohttp.server: refused a malformed request from 10.0.0.1")
    assert "Traceback" not in text and KEY not in text and text.count("\n") == 1
    assert len(text) < 400


def test_json_lines_carry_the_redacted_traceback() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", (KEY,), None)
    try:
        raise RuntimeError(KEY)
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    RedactingFilter().filter(record)
    doc = orjson.loads(JsonFormatter().format(record))
    assert KEY not in doc["message"] and KEY not in doc["exc"]
