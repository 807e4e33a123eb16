from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.kernel.pagination import paginate
from saas.subscriptions.models import (
    Subscription,
    SubscriptionCharge,
    SubscriptionHistory,
    SubscriptionPeriod,
)


def list_subscriptions(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    customer_id: str | None = None,
    status: str | None = None,
) -> tuple[Sequence[Subscription], bool]:
    stmt = sa.select(Subscription)
    if customer_id:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    if status:
        stmt = stmt.where(Subscription.status == status)
    return paginate(session, stmt, Subscription.id, limit=limit, starting_after=starting_after)


def list_history(
    session: Session, subscription_id: str, *, limit: int, starting_after: str | None
) -> tuple[Sequence[SubscriptionHistory], bool]:
    """Newest first by `seq` (ids of rows written in one millisecond are not ordered)."""
    stmt = sa.select(SubscriptionHistory).where(
        SubscriptionHistory.subscription_id == subscription_id
    )
    if starting_after:
        seq = session.scalar(
            sa.select(SubscriptionHistory.seq).where(
                SubscriptionHistory.subscription_id == subscription_id,
                SubscriptionHistory.id == starting_after,
            )
        )
        if seq is not None:
            stmt = stmt.where(SubscriptionHistory.seq < seq)
    rows = session.scalars(stmt.order_by(SubscriptionHistory.seq.desc()).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


def list_charges(
    session: Session, subscription_id: str, *, limit: int, starting_after: str | None
) -> tuple[Sequence[SubscriptionCharge], bool]:
    stmt = sa.select(SubscriptionCharge).where(
        SubscriptionCharge.subscription_id == subscription_id
    )
    return paginate(
        session, stmt, SubscriptionCharge.id, limit=limit, starting_after=starting_after
    )


def list_periods(session: Session, subscription_id: str) -> Sequence[SubscriptionPeriod]:
    return session.scalars(
        sa.select(SubscriptionPeriod)
        .where(SubscriptionPeriod.subscription_id == subscription_id)
        .order_by(SubscriptionPeriod.seq)
    ).all()
