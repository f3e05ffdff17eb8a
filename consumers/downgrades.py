"""``upsell.downgrades``: downgrade counts and contraction MRR, with their plan transitions."""

from __future__ import annotations

from consumers.plan_changes import add_transition, experiment, spread
from schemas.models import Kind, PlanChange
from stream.state import keys
from stream.state.batch import MoneyEntry, ShopSection

KIND = Kind.DOWNGRADE


def count(section: ShopSection, event: PlanChange, day: str) -> None:
    cur = event.currency
    contraction = event.from_plan.mrr_minor - event.to_plan.mrr_minor
    counters = spread(
        event, day, {keys.DOWNGRADES: 1, keys.money(keys.CONTRACTION, cur): contraction}
    )
    add_transition(
        counters, event, day, {keys.DOWNGRADES: 1, keys.money(keys.NET_MRR, cur): -contraction}
    )
    section.money.append(
        MoneyEntry(
            seen_key=keys.seen(event.shop_id, "d", event.event_id),
            counters=counters,
            experiment=experiment(event, "d"),
        )
    )
