"""``upsell.upgrades``: conversions, revenue and expansion MRR, the ledger and unique upgraders."""

from __future__ import annotations

import orjson

from consumers.plan_changes import add_transition, event_ms, experiment, spread
from schemas.models import Kind, Plan, PlanChange
from schemas.timestamps import utc_text
from stream.state import keys
from stream.state.batch import MoneyEntry, ShopSection

KIND = Kind.UPGRADE


def count(section: ShopSection, event: PlanChange, day: str) -> None:
    cur = event.currency
    mrr = event.to_plan.mrr_minor - event.from_plan.mrr_minor
    revenue = event.revenue_minor
    counters = spread(
        event,
        day,
        {
            keys.CONVERSIONS: 1,
            keys.money(keys.REVENUE, cur): revenue,
            keys.money(keys.EXPANSION, cur): mrr,
        },
    )
    add_transition(
        counters,
        event,
        day,
        {
            keys.CONVERSIONS: 1,
            keys.money(keys.REVENUE, cur): revenue,
            keys.money(keys.NET_MRR, cur): mrr,
        },
    )
    shop = event.shop_id
    section.money.append(
        MoneyEntry(
            seen_key=keys.seen(shop, "u", event.event_id),
            counters=counters,
            hll=(keys.upgraders(shop, day), event.subscriber_id),
            ledger=(keys.ledger(shop), event_ms(event), ledger_item(event)),
            experiment=experiment(event, "u"),
        )
    )


def ledger_item(event: PlanChange) -> str:
    """The conversions-ledger member: the contract's conversion item, as JSON text (held until
    its batch is applied; orjson's bytes would hold a 4 KiB buffer each, orjson 3.13)."""
    return orjson.dumps(
        {
            "event_id": event.event_id,
            "occurred_at": utc_text(event.occurred_at),
            "subscriber_id": event.subscriber_id,
            "order_id": event.order_id,
            "group_id": event.group_id,
            "variation_id": event.variation_id,
            "from": _plan(event.from_plan),
            "to": _plan(event.to_plan),
            "revenue_minor": event.revenue_minor,
            "currency": event.currency,
        }
    ).decode()


def _plan(plan: Plan) -> dict[str, object]:
    return {
        "product_ids": list(plan.product_ids),
        "selling_plan_id": plan.selling_plan_id,
        "mrr_minor": plan.mrr_minor,
    }
