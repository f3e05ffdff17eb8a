"""Logging for every process: one line per event that matters, text or JSON lines.

Every record passes one filter on the handler, whichever logger wrote it (ours, aiohttp's,
Faust's), tracebacks included:

- secrets are redacted: bearer tokens, ``Authorization`` values, ``token=`` and ``key=``
  parameters, and write keys (``upk_``/``usk_``). A collector request line over 8 KiB once put
  a ``usk_`` key in clear into aiohttp's traceback;
- control characters are escaped (``\\x0a``): a request path decoded with ``%0A`` in it forged a
  whole log line (an ``ERROR stream.auth ... token leaked`` line). A traceback keeps its own
  line breaks, and only those;
- a request aiohttp's parser refuses (a line or header over its limit, a bad method) is one
  warning without a traceback; aiohttp answers it 400 itself.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson
from aiohttp.http_exceptions import HttpProcessingError

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]+")
_AUTHORIZATION = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+")
_PARAMS = re.compile(r"(?i)\b((?:token|key)=)[^&\s\"']+")
_WRITE_KEY = re.compile(r"\b(upk_|usk_)[A-Za-z0-9_\-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NOISY = ("aiokafka", "faust", "mode", "kafka", "aiohttp.access", "asyncio")
_REFUSED_MAX = 200  # characters of a refused request's reason kept in its line


def redact(text: str) -> str:
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _AUTHORIZATION.sub(r"\1[redacted]", text)
    text = _PARAMS.sub(r"\1[redacted]", text)
    return _WRITE_KEY.sub(r"\1[redacted]", text)


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100 else "\\u2028"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape, text)


class RedactingFilter(logging.Filter):
    """Redacts secrets and escapes control characters in a record before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        _refused_request(record)
        message = record.getMessage()
        cleaned = escape_controls(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = escape_controls(redact(text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = escape_controls(redact(record.stack_info), keep_newlines=True)
        return True


def _refused_request(record: logging.LogRecord) -> None:
    """aiohttp's traceback for a request its parser refused becomes a one-line warning."""
    exc = record.exc_info[1] if record.exc_info else None
    if record.name != "aiohttp.server" or not isinstance(exc, HttpProcessingError):
        return
    reason = str(exc.message if exc.message else exc)[:_REFUSED_MAX]
    remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
    record.msg = "refused a malformed request from %s (answered %d): %s: %s"
    record.args = (remote, exc.code or 400, type(exc).__name__, reason)
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    record.exc_info, record.exc_text = None, None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = record.exc_text or redact(self.formatException(record.exc_info))
        return orjson.dumps(doc).decode()


def configure_logging(fmt: str, level: str) -> None:
    """Replace the root handlers with one stderr handler in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in _NOISY:
        logging.getLogger(name).setLevel(quiet)
