"""The apply script's experiment steps (apply.lua, "Experiments") in plain Python, for the
in-memory store: exposures of subscribers and their conversions, downgrades and revenue."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from stream.state import keys

Hashes = MutableMapping[str, dict[str, Any]]


def _stored(x: float) -> int | float:
    """As HINCRBYFLOAT leaves it: whole numbers below 1e17 read back as integers."""
    return int(x) if x == int(x) and abs(x) < 1e17 else x


def _add(h: dict[str, Any], field: str, delta: float) -> None:
    h[field] = _stored(h.get(field, 0) + delta)


def _counters(hashes: Hashes, s: dict[str, Any], day: str, group: str) -> dict[str, Any]:
    return hashes[f"{s['xk']}{day}:{group}"]


def expose(
    hashes: Hashes, exposed: dict[str, dict[str, str]], s: dict[str, Any], x: list[Any]
) -> None:
    sk, group, var, day, _end, crossed = x
    sub = exposed.setdefault(sk, {})
    sep = keys.SEP
    if "v" not in sub:
        sub.update(v=var, day=day)
        xp = _counters(hashes, s, day, group)
        _add(xp, keys.EXPOSED + sep + var, 1)
        for f, value in list(sub.items()):
            if f in (keys.CONVERTED, keys.DOWNGRADED):
                _add(xp, f + sep + var, 1)
            elif f.startswith("r:"):
                r = float(value)
                _add(xp, f + sep + var, r)
                _add(xp, "q:" + f[2:] + sep + var, r * r)
        if crossed == 1:
            sub["m"] = "1"
            _add(xp, keys.CROSSED + sep + var, 1)
        starts = hashes[s["xf"]]
        if group not in starts or day < starts[group]:
            starts[group] = day
    elif (sub["v"] != var or crossed == 1) and "m" not in sub:
        sub["m"] = "1"
        _add(_counters(hashes, s, sub["day"], group), keys.CROSSED + sep + sub["v"], 1)


def experiment_money(
    hashes: Hashes, exposed: dict[str, dict[str, str]], s: dict[str, Any], x: list[Any]
) -> None:
    sk, group, kind = x[0], x[1], x[2]
    sub = exposed.setdefault(sk, {})
    var = sub.get("v")
    xp = _counters(hashes, s, sub["day"], group) if var is not None else None
    if xp is None:
        sub["p"] = "1"  # came before the exposure: counted when it comes
    sep = keys.SEP
    if kind == "d":
        if keys.DOWNGRADED not in sub:
            sub[keys.DOWNGRADED] = "1"
            if xp is not None:
                _add(xp, keys.DOWNGRADED + sep + str(var), 1)
        return
    cur, rev = x[3], x[4]
    first = keys.CONVERTED not in sub
    sub[keys.CONVERTED] = "1"
    old = float(sub.get("r:" + cur, 0))
    sub["r:" + cur] = str(int(old + rev))
    if xp is not None:
        if first:
            _add(xp, keys.CONVERTED + sep + str(var), 1)
        _add(xp, f"r:{cur}{sep}{var}", rev)
        _add(xp, f"q:{cur}{sep}{var}", 2 * old * rev + rev * rev)
