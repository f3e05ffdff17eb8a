"""The tokens file in force: re-read when it changes, kept when the new one does not parse.
(SIGHUP and a Kubernetes-like rotation run in tests/integration/test_container_conditions.py.)"""

from __future__ import annotations

from pathlib import Path

from stream.http.api.auth import TokenFile, digest


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def line(token: str, shops: str) -> str:
    return f"{digest(token)} {shops}\n"


def test_a_changed_file_is_read_again_within_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line("old", "*"))
    clock = Clock()
    tokens = TokenFile(path, check_every_s=1.0, clock=clock)
    assert tokens.grant("old") is not None and tokens.grant("new") is None
    path.write_text(line("new", "shop-1"))  # revokes "old", adds "new"
    assert tokens.grant("old") is not None, "looked at no more than once a second"
    clock.now = 1.5
    assert tokens.grant("old") is None
    grant = tokens.grant("new")
    assert grant is not None and grant.allows("shop-1") and not grant.allows("shop-2")


def test_a_secret_update_swapping_a_symlink_is_noticed(tmp_path: Path) -> None:
    """Kubernetes updates a Secret volume by pointing a symlink at a new directory."""
    for version, token in (("v1", "first"), ("v2", "second")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "tokens").write_text(line(token, "*"))
    (tmp_path / "..data").symlink_to("v1")
    clock = Clock()
    tokens = TokenFile(tmp_path / "..data" / "tokens", clock=clock)
    assert tokens.grant("first") is not None
    (tmp_path / "..data_new").symlink_to("v2")
    (tmp_path / "..data_new").replace(tmp_path / "..data")
    clock.now = 2.0
    assert tokens.grant("second") is not None and tokens.grant("first") is None


def test_a_broken_file_keeps_the_tokens_in_force(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(line("kept", "*"))
    tokens = TokenFile(path)
    path.write_text("not a token line\n")
    assert tokens.reload() is False
    assert tokens.grant("kept") is not None
    path.write_text(line("fixed", "*"))
    assert tokens.reload() is True
    assert tokens.grant("fixed") is not None and tokens.grant("kept") is None
