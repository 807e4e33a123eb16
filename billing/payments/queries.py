"""Reads for payment lists (newest first, cursor pagination)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.payments.models import Payment
from saas.kernel.pagination import paginate


def list_payments(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    customer_id: str | None = None,
    invoice_id: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    provider: str | None = None,
) -> tuple[Sequence[Payment], bool]:
    stmt = sa.select(Payment)
    if customer_id:
        stmt = stmt.where(Payment.customer_id == customer_id)
    if invoice_id:
        stmt = stmt.where(Payment.invoice_id == invoice_id)
    if kind:
        stmt = stmt.where(Payment.kind == kind)
    if status:
        stmt = stmt.where(Payment.status == status)
    if provider:
        stmt = stmt.where(Payment.provider == provider)
    return paginate(session, stmt, Payment.id, limit=limit, starting_after=starting_after)


def invoice_payments(session: Session, invoice_id: str) -> Sequence[Payment]:
    return session.scalars(
        sa.select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.id)
    ).all()
