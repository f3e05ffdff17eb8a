"""Reading one setting from the environment: a number in its range, a switch, a choice, a list
of networks. Each reader raises :class:`SettingsError` naming the variable."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping


class SettingsError(ValueError):
    """A configuration value is wrong; ``variable`` names the environment variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


def read_int(e: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = e.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"expected an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def read_float(e: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = e.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"expected a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def read_bool(e: Mapping[str, str], name: str, default: bool) -> bool:
    raw = e.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"expected on/off, got {raw!r}")


def read_choice(
    e: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...], upper: bool = False
) -> str:
    raw = e.get(name, "").strip()
    if not raw:
        return default
    value = raw.upper() if upper else raw.lower()
    if value not in allowed:
        raise SettingsError(name, f"expected one of {', '.join(allowed)}, got {raw!r}")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def read_networks(e: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """Comma-separated networks (``10.0.0.0/8``; a bare address is a /32 or /128)."""
    entries = (n.strip() for n in e.get(name, "").split(","))
    try:
        return tuple(ipaddress.ip_network(n, strict=False) for n in entries if n)
    except ValueError as exc:
        raise SettingsError(name, f"expected IP networks like 10.0.0.0/8: {exc}") from None
