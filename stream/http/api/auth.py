"""Bearer tokens: the tokens file maps SHA-256 digests of tokens to the shops they may read.

File format, one token per line: ``<sha256 hex> <shop>[,<shop>...]`` or ``<sha256 hex> *``;
``#`` starts a comment. Tokens themselves are never stored, logged or compared in clear: the
presented token is hashed and compared with :func:`hmac.compare_digest`.

The worker re-reads the file when it changes (:class:`TokenFile`: its modification time, size
or inode, looked at no more than once a second while requests arrive, which also catches the
symlink swap of an updated Kubernetes Secret) and on SIGHUP. A file that does not parse is
logged and the tokens in force stay.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"[0-9a-f]{64}")


class TokenFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Grant:
    shops: frozenset[str]
    all_shops: bool

    def allows(self, shop_id: str) -> bool:
        return self.all_shops or shop_id in self.shops


def digest(token: str) -> str:
    # aiohttp hands over header bytes that are not UTF-8 as surrogate escapes: hash those bytes
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


# A token's id: the first hex characters of its digest, as ``token list`` shows it and as an
# erasure records who asked (never the token itself)
ID_CHARS = 12


def token_id(hexdigest: str) -> str:
    return hexdigest[:ID_CHARS]


class Grants(Protocol):
    def grant(self, token: str) -> Grant | None: ...


class TokenStore:
    def __init__(self, grants: dict[str, Grant]) -> None:
        self._grants = grants

    def __len__(self) -> int:
        return len(self._grants)

    @classmethod
    def parse(cls, text: str) -> TokenStore:
        grants: dict[str, Grant] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not _DIGEST.fullmatch(parts[0]):
                raise TokenFileError(f"line {number}: expected '<sha256 hex> <shop>[,<shop>]'")
            shops = frozenset(s for s in parts[1].split(",") if s)
            grants[parts[0]] = Grant(shops - {"*"}, "*" in shops)
        return cls(grants)

    @classmethod
    def from_file(cls, path: Path) -> TokenStore:
        return cls.parse(path.read_text())

    def grant(self, token: str) -> Grant | None:
        presented = digest(token)
        found = None
        for known, grant in self._grants.items():  # constant time per entry, no early exit
            if hmac.compare_digest(known, presented):
                found = grant
        return found


FileStamp = tuple[int, int, int]


def _stamp(path: Path) -> FileStamp | None:
    try:
        st = os.stat(path)  # follows symlinks: a Secret update swaps the link's target
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class TokenFile:
    """The tokens file in force: re-read when it changed, or when :meth:`reload` is called."""

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._check_every = check_every_s
        self._clock = clock
        self._stamp = _stamp(path)
        self._store = TokenStore.from_file(path)
        self._checked = clock()

    def grant(self, token: str) -> Grant | None:
        self.reload_if_changed()
        return self._store.grant(token)

    def reload_if_changed(self) -> bool:
        now = self._clock()
        if now - self._checked < self._check_every:
            return False
        self._checked = now
        if _stamp(self.path) == self._stamp:
            return False
        return self.reload()

    def reload(self) -> bool:
        """Read the file again; on an error keep the tokens in force. True when reloaded."""
        stamp = _stamp(self.path)
        try:
            store = TokenStore.from_file(self.path)
        except (OSError, UnicodeDecodeError, TokenFileError) as exc:
            log.error("tokens file %s not reloaded, the tokens in force stay: %s", self.path, exc)
            self._stamp = stamp  # logged once per change, not once per request
            return False
        self._store, self._stamp = store, stamp
        log.warning("tokens file %s reloaded: %d tokens", self.path, len(store))
        return True
