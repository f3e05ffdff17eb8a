"""Redis key layout (documented in docs/state.md). Every per-shop key carries the ``{shop_id}``
hash tag, so all keys of one shop live in one Redis Cluster slot.

The writer (the batch applier) and the reader (the query API) both build names here and only here.
"""

from __future__ import annotations

import orjson

PREFIX = "us"
SEP = "\x1f"  # between a metric code and the id(s) in a hash field

# Metric codes used as (the first part of) hash fields.
VIEWS = "v"
CLICKS = "c"
CONVERSIONS = "u"
DOWNGRADES = "d"
REVENUE = "r"  # r:<CUR>  revenue_minor of upgrades
EXPANSION = "e"  # e:<CUR>  sum(to.mrr - from.mrr) over upgrades
CONTRACTION = "x"  # x:<CUR> sum(from.mrr - to.mrr) over downgrades
NET_MRR = "n"  # n:<CUR>  transitions only: sum(to.mrr - from.mrr) over upgrades and downgrades
ANONYMOUS_VIEWS = "a"  # views without a subscriber_id (counted in "v" too; in no experiment)

# Fields of an exposures hash (``exposures``), ``<code>\x1f<variation_id>``, per exposure day:
EXPOSED = "s"  # subscribers first exposed to the variation that day
CONVERTED = "k"  # of them, those with an upgrade attributed to the group
DOWNGRADED = "g"  # of them, those with a downgrade attributed to the group
CROSSED = "m"  # of them, those who saw another variation of the group too
REVENUE_SUM = "r"  # r:<CUR> Σ of their revenue (a float: HINCRBYFLOAT)
REVENUE_SQUARES = "q"  # q:<CUR> Σ of the squares of each one's revenue (a float)

UNATTRIBUTED_GROUP = "(unattributed)"
UNATTRIBUTED_VARIATION = "(none)"


def money(code: str, currency: str) -> str:
    return f"{code}:{currency}"


def day(shop: str, date: str) -> str:
    """Shop-day rollup: fields are bare metric codes (``v``, ``r:USD`` ...)."""
    return f"{PREFIX}:{{{shop}}}:day:{date}"


def groups(shop: str, date: str) -> str:
    """Per-group rollup of a shop-day: fields ``<metric>\\x1f<group_id>``."""
    return f"{PREFIX}:{{{shop}}}:grp:{date}"


def variations(shop: str, date: str, group: str) -> str:
    """Per-variation counters of one group on a shop-day: fields ``<metric>\\x1f<variation_id>``."""
    return f"{PREFIX}:{{{shop}}}:var:{date}:{group}"


def transitions(shop: str, date: str, group: str) -> str:
    """Plan transitions of one group on a shop-day.

    Fields ``<metric>\\x1f<json [variation_id, from_plan, to_plan]>``, metrics u, d, r:CUR, n:CUR.
    """
    return f"{PREFIX}:{{{shop}}}:trn:{date}:{group}"


def exposures(shop: str, date: str, group: str) -> str:
    """Exposed subscribers of one group by the shop-local day of their first exposure, with
    their conversions, downgrades and revenue (fields above; docs/state.md)."""
    return f"{exposures_prefix(shop)}{date}:{group}"


def exposures_prefix(shop: str) -> str:
    """``exposures`` without its day and group: the apply script adds them (it learns the day
    of an earlier exposure from the subscriber's hash)."""
    return f"{PREFIX}:{{{shop}}}:xp:"


def exposed(shop: str, group: str, subscriber: str) -> str:
    """One subscriber in one group: hash ``v`` (the variation of the first exposure), ``day``
    (its shop-local day), ``k`` / ``g`` (converted / downgraded once), ``p`` (one of them came
    before the exposure), ``m`` (saw another variation), ``r:<CUR>`` (revenue so far, minor
    units). Expires with its exposure day's counters (EXPIREAT), or after the retention when no
    exposure came."""
    return f"{PREFIX}:{{{shop}}}:xs:{orjson.dumps([group, subscriber]).decode()}"


def experiment_starts(shop: str) -> str:
    """Hash group_id -> the first shop-local day with an exposure (the start of its run)."""
    return f"{PREFIX}:{{{shop}}}:xf"


def upgraders(shop: str, date: str) -> str:
    """HyperLogLog of the subscriber ids that upgraded on a shop-day."""
    return f"{PREFIX}:{{{shop}}}:hll:{date}"


def ledger(shop: str) -> str:
    """Conversions ledger: sorted set, score = occurred_at in epoch ms, member = JSON item."""
    return f"{PREFIX}:{{{shop}}}:ledger"


def erasures(shop: str) -> str:
    """Erasure records of the shop (list, newest first): when, by whom, how many ledger entries
    went; never the erased id (stream/state/erasure.py)."""
    return f"{PREFIX}:{{{shop}}}:erasures"


def seen(shop: str, kind: str, event_id: str) -> str:
    """Money dedupe marker for an upgrade (kind ``u``) or downgrade (``d``) event id."""
    return f"{PREFIX}:{{{shop}}}:seen:{kind}:{event_id}"


def subscribers(shop: str) -> str:
    """Active-subscriber snapshots: hash ``YYYY-MM-DD`` -> count."""
    return f"{PREFIX}:{{{shop}}}:subs"


LAST_EVENT = "le"  # field of the progress hash: epoch ms of the newest counted event


def progress(shop: str) -> str:
    """Per-shop exactly-once progress: ``o:<topic>:<p>:<epoch>`` last applied offset,
    ``f:<topic>:<p>`` the fencing generation of the worker that wrote it, and ``le``
    (``LAST_EVENT``), the newest counted event's time. One hash, so a batch costs each of its
    shops one read and one write."""
    return f"{PREFIX}:{{{shop}}}:prog"


def partition(topic: str, part: int) -> str:
    """Partition checkpoint: hash ``offset`` (last applied), ``gen`` (owner generation)."""
    return f"{PREFIX}:part:{{{topic}:{part}}}"


_SHOP_HEAD = f"{PREFIX}:{{"  # how every per-shop key starts
SHOP_KEYS = _SHOP_HEAD + "*"  # their SCAN pattern


def retention_sweep(last_day: str) -> str:
    """Marker of the sweep that deletes the days through ``last_day`` (one per deployment)."""
    return f"{PREFIX}:retention:{last_day}"


def write_key(key_digest: str) -> str:
    """A collector write key, by the SHA-256 of the key: hash ``shop``, ``kind``, ``origins``."""
    return f"{PREFIX}:wk:{key_digest}"


def collected(shop: str, event_id: str) -> str:
    """Collector dedupe marker: this shop's event id was accepted (expires with the window)."""
    return f"{PREFIX}:{{{shop}}}:col:{event_id}"


SWEEP_DONE = "done"  # the value of a retention_sweep marker once that sweep finished
DAYS = f"{PREFIX}:days"  # sorted set (scores 0) of the days that have day-scoped keys
RETENTION_SCANNED = f"{PREFIX}:retention:scanned"  # set once a sweep scanned the whole keyspace


def day_shops(date: str) -> str:
    """Set of the shops with day-scoped keys of ``date`` (stream/state/day_index.py)."""
    return f"{PREFIX}:days:{date}"


SHOPS = f"{PREFIX}:shops"  # hash shop_id -> JSON settings
# the listed shops (stream/state/shop_list.py): shop -> last UTC day seen; all shops, scores 0
SHOPS_ACTIVE = f"{PREFIX}:shops:active"
SHOPS_INDEX = f"{PREFIX}:shops:index"
SHOPS_SEEN_LEGACY = f"{PREFIX}:shops:seen"  # before them: a set without retention, folded in
# the layout of the state: a worker counts only if it knows the number (docs/state.md)
STATE_FORMAT = f"{PREFIX}:format"


# Kinds of per-shop keys that belong to one shop-local day ``D`` (``us:{S}:<kind>:D[:G]``): the
# retention sweep deletes them once D is past the retention (stream/state/retention.py).
DAY_KINDS = ("day", "grp", "var", "trn", "hll", "xp")
_DAY_LEN = len("YYYY-MM-DD")


def shop_of(name: str) -> str | None:
    """The shop of a per-shop key name (``us:{s1}:ledger`` -> ``s1``), else None. Shop ids
    never contain ``}``."""
    if not name.startswith(_SHOP_HEAD):
        return None
    close = name.find("}:", len(_SHOP_HEAD))
    return None if close < 0 else name[len(_SHOP_HEAD) : close]


def day_of(name: str) -> str | None:
    """The day ``D`` of a day-scoped key name, else None (``us:{s1}:var:2026-11-24:g`` ->
    ``2026-11-24``; ``us:{s1}:ledger`` -> None)."""
    shop = shop_of(name)
    if shop is None:
        return None
    kind, _, rest = name[len(_SHOP_HEAD) + len(shop) + 2 :].partition(":")
    if kind not in DAY_KINDS or len(rest) < _DAY_LEN:
        return None
    day = rest[:_DAY_LEN]
    if len(rest) > _DAY_LEN and rest[_DAY_LEN] != ":":
        return None
    return day


def field(metric: str, ident: str) -> str:
    return f"{metric}{SEP}{ident}"


def transition_field(metric: str, variation: str, from_plan: str, to_plan: str) -> str:
    return f"{metric}{SEP}{orjson.dumps([variation, from_plan, to_plan]).decode()}"


def split_field(raw: str) -> tuple[str, str]:
    """``'v\\x1fgroup-a'`` -> ``('v', 'group-a')``."""
    metric, _, ident = raw.partition(SEP)
    return metric, ident


# The state changelog (stream/state/changelog.py, docs/state.md "Changelog"): what changed in
# Redis and is not yet acknowledged by the compacted changelog topic.
CHANGELOG_SHOPS = f"{PREFIX}:cl:shops"  # hash: shop -> a version bumped by every change
CHANGELOG_GLOBAL = f"{PREFIX}:cl:g"  # hash: item -> version (checkpoints, settings, write keys)
CHANGELOG_AT = f"{PREFIX}:cl:at"  # epoch ms of the newest flush marker sent (set before it)
CHANGELOG_LEASE = f"{PREFIX}:cl:lease"  # the worker that flushes (one at a time)
RESTORE_LOCK = f"{PREFIX}:cl:restore"  # the worker that restores (one at a time)
RESTORED = f"{PREFIX}:cl:restored"  # JSON: when and how much the last restore wrote


def changelog_dirty(shop: str) -> str:
    """A shop's changes not yet in the changelog: hash item -> version (``#``: the last one)."""
    return f"{PREFIX}:{{{shop}}}:cl"
