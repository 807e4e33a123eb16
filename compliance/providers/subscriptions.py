"""Subscriptions and their history.

Erasure cancels every subscription that has not ended (as of now, no proration: the person
asked to leave) and clears subscription metadata, which a tenant may have filled with
personal data. The history rows stay untouched: they are append-only (ORM hooks, database
privileges) and hold surrogate ids, prices and MRR amounts only, which is what keeps MRR
reports identical after an erasure.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    Provider,
    Registry,
    columns,
)
from saas.catalog.models import Plan, Price, Product
from saas.subscriptions.lifecycle import State
from saas.subscriptions.models import Subscription, SubscriptionHistory

NAME = "subscriptions"


def _actor_kind(actor: str) -> str:
    if actor == "system":
        return "system"
    if actor.startswith("portal:"):
        return "data_subject"
    return "tenant"  # a credential of the tenant: masked, it names the tenant's staff


def export(ctx: ExportContext) -> ExportPart:
    session = ctx.session
    rows = session.execute(
        sa.select(Subscription, Price, Plan, Product)
        .join(Price, Price.id == Subscription.price_id)
        .join(Plan, Plan.id == Price.plan_id)
        .join(Product, Product.id == Plan.product_id)
        .where(Subscription.customer_id == ctx.subject.customer_id)
        .order_by(Subscription.id)
    ).all()
    records: list[dict[str, Any]] = []
    for sub, price, plan, product in rows:
        history = session.scalars(
            sa.select(SubscriptionHistory)
            .where(SubscriptionHistory.subscription_id == sub.id)
            .order_by(SubscriptionHistory.seq)
        ).all()
        records.append(
            {
                "subscription_id": sub.id,
                "status": sub.status,
                "product": product.name,
                "plan": plan.name,
                "price_id": price.id,
                "unit_amount": price.unit_amount,
                "currency": price.currency,
                "interval": price.billing_interval,
                "quantity": sub.quantity,
                "started_at": sub.started_at,
                "trial_end_at": sub.trial_end_at,
                "current_period_start_at": sub.current_period_start_at,
                "current_period_end_at": sub.current_period_end_at,
                "canceled_at": sub.canceled_at,
                "ended_at": sub.ended_at,
                "metadata": sub.metadata_,
                "history": [
                    {
                        "seq": h.seq,
                        "event": h.event,
                        "occurred_at": h.occurred_at,
                        "actor": _actor_kind(h.actor),
                        "old_status": h.old_status,
                        "new_status": h.new_status,
                        "old_price_id": h.old_price_id,
                        "new_price_id": h.new_price_id,
                        "old_quantity": h.old_quantity,
                        "new_quantity": h.new_quantity,
                        "currency": h.currency,
                        "mrr_before": h.mrr_before,
                        "mrr_after": h.mrr_after,
                    }
                    for h in history
                ],
            }
        )
    return ExportPart(records={"subscriptions": records})


def erase(ctx: ErasureContext) -> ErasureReport:
    from saas.subscriptions.services import cancel_subscription

    report = ErasureReport()
    subs = ctx.session.scalars(
        sa.select(Subscription)
        .where(Subscription.customer_id == ctx.subject.customer_id)
        .order_by(Subscription.id)
    ).all()
    for sub in subs:
        if sub.status != State.CANCELED:
            cancel_subscription(
                ctx.session,
                sub.id,
                {"at_period_end": False, "prorate": False},
                actor=ctx.actor,
                now=ctx.now,
            )
            report.count("subscription_canceled")
        if sub.metadata_:
            sub.metadata_ = {}
            report.count("subscription_metadata_cleared")
    ctx.session.flush()
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("subscriptions", ["metadata"]),
    purpose="performing the subscription contract (Art. 6(1)(b) GDPR)",
    retention=(
        "subscriptions while the relationship lasts (cancelled and cleared on erasure); "
        "history rows hold surrogate ids and amounts only and are kept for revenue reporting"
    ),
    export=export,
    erase=erase,
    categories=("subscriptions",),
    order=10,  # first: active subscriptions are cancelled before anything else is erased
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
