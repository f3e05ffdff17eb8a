"""``upsell-stream token add|list|revoke``: the API's bearer tokens file.

A token is printed once by ``add``; the file keeps its SHA-256 and its shops. ``list`` shows
each token's id (the first 12 hex characters of the digest) and shops; ``revoke`` takes the
token itself or an id from ``list`` and rewrites the file without it (atomically: a temporary
file renamed over it), which every worker picks up within a second (stream/http/api/auth.py).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path

from stream.http.api.auth import TokenStore, digest, token_id

_SHOP = re.compile(r"[A-Za-z0-9._:-]{1,128}|\*")


class TokenCommandError(ValueError):
    """A token command cannot do what was asked; the message is the one line the user sees."""


def add_token(path: Path, shops: list[str]) -> str:
    """Append a new token's SHA-256 with its shops to ``path`` and return the token."""
    bad = [s for s in shops if not _SHOP.fullmatch(s)]
    if not shops or bad:
        raise TokenCommandError(
            f"--shop takes a shop id (1-128 of A-Z a-z 0-9 . _ : -) or *, got {bad[0]!r}"
            if bad
            else "give one or more --shop (a shop id, or * for all)"
        )
    token = "ust_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(f"{digest(token)} {','.join(shops)}\n")
    return token


def _entries(path: Path) -> list[tuple[str, str, str]]:
    """(digest, shops, raw line) of each token line; comments and blank lines are skipped."""
    if not path.exists():
        raise TokenCommandError(f"no tokens file at {path} (token add makes it)")
    text = path.read_text()
    TokenStore.parse(text)  # a file the workers would refuse is refused here too
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            hexdigest, shops = line.split()
            out.append((hexdigest, shops, raw))
    return out


def list_tokens(path: Path) -> list[tuple[str, str]]:
    """(id, shops) of every token in the file, in file order."""
    return [(token_id(d), shops) for d, shops, _ in _entries(path)]


def revoke_token(path: Path, which: str) -> str:
    """Remove the token ``which`` (the token, or an id of at least 8 hex characters from
    ``list``) from the file; returns its id."""
    which = which.strip()
    entries = _entries(path)
    if which.startswith("ust_"):
        target = digest(which)
        hits = [e for e in entries if e[0] == target]
    elif re.fullmatch(r"[0-9a-f]{8,64}", which):
        hits = [e for e in entries if e[0].startswith(which)]
    else:
        raise TokenCommandError("give the token (ust_...) or its id from token list (hex)")
    if not hits:
        raise TokenCommandError("no such token in " + str(path))
    if len({e[0] for e in hits}) > 1:
        raise TokenCommandError(f"{which} names {len(hits)} tokens; give more of the id")
    gone = hits[0][0]
    kept = [
        raw for raw in path.read_text().splitlines() if raw.split("#", 1)[0].split()[:1] != [gone]
    ]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tokens-")
    with os.fdopen(fd, "w") as out:
        out.write("".join(line + "\n" for line in kept))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return token_id(gone)
