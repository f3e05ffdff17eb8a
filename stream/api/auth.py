"""Bearer tokens: the tokens file maps SHA-256 digests of tokens to the shops they may read.

File format, one token per line: ``<sha256 hex> <shop>[,<shop>...]`` or ``<sha256 hex> *``;
``#`` starts a comment. Tokens themselves are never stored, logged or compared in clear: the
presented token is hashed and compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

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


class TokenStore:
    def __init__(self, grants: dict[str, Grant]) -> None:
        self._grants = grants

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
