"""``upsell-stream token add --shop S``: a fresh random token; only its digest is stored."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from stream.http.api.auth import digest


def add_token(path: Path, shops: list[str]) -> str:
    """Append a new token's SHA-256 with its shops to ``path`` and return the token."""
    if not shops or any(not s or "," in s or " " in s for s in shops):
        raise ValueError("give one or more shop ids (or *), without spaces or commas")
    token = "ust_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(f"{digest(token)} {','.join(shops)}\n")
    return token
