"""What upgrades and downgrades share: the attribution of a plan change to its counters.

Each plan change becomes one :class:`MoneyEntry`, applied only if its ``(shop, kind, event_id)``
dedupe marker is new: money is never aggregated across events before the dedupe check.
"""

from __future__ import annotations

from schemas.models import PlanChange
from stream.state import keys
from stream.state.batch import Counters


def attribution(event: PlanChange) -> tuple[str, str]:
    if event.group_id is None:
        return keys.UNATTRIBUTED_GROUP, keys.UNATTRIBUTED_VARIATION
    return event.group_id, event.variation_id or keys.UNATTRIBUTED_VARIATION


def spread(event: PlanChange, day: str, deltas: dict[str, int]) -> Counters:
    """The same deltas on the shop-day rollup, the group rollup and the variation hash."""
    group, variation = attribution(event)
    shop = event.shop_id
    return {
        keys.day(shop, day): dict(deltas),
        keys.groups(shop, day): {keys.field(m, group): d for m, d in deltas.items()},
        keys.variations(shop, day, group): {keys.field(m, variation): d for m, d in deltas.items()},
    }


def add_transition(counters: Counters, event: PlanChange, day: str, deltas: dict[str, int]) -> None:
    group, variation = attribution(event)
    src, dst = event.from_plan.selling_plan_id, event.to_plan.selling_plan_id
    counters[keys.transitions(event.shop_id, day, group)] = {
        keys.transition_field(m, variation, src, dst): d for m, d in deltas.items()
    }


def experiment(event: PlanChange, kind: str) -> tuple[str, str, str, str, int] | None:
    """An attributed plan change also counts in its group's experiment, for the variation the
    subscriber was first exposed to (the apply script looks it up): ``None`` when unattributed."""
    if event.group_id is None:
        return None
    key = keys.exposed(event.shop_id, event.group_id, event.subscriber_id)
    return (key, event.group_id, kind, event.currency, event.revenue_minor)


def event_ms(event: PlanChange) -> int:
    return int(event.occurred_at.timestamp() * 1000)
