"""Logging for a worker: one line per event that matters, text or JSON lines, tokens redacted."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]+")
_TOKEN_PARAM = re.compile(r"(?i)(token=)[^&\s\"']+")
_NOISY = ("aiokafka", "faust", "mode", "kafka", "aiohttp.access", "asyncio")


def redact(text: str) -> str:
    return _TOKEN_PARAM.sub(r"\1[redacted]", _BEARER.sub(r"\1[redacted]", text))


class RedactingFilter(logging.Filter):
    """Rewrites any bearer token or ``token=`` value in a record before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
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
