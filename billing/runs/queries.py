"""Reads of billing runs (newest first, cursor pagination)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.runs.errors import BillingRunNotFoundError
from billing.runs.models import BillingRun
from saas.kernel.pagination import paginate


def get_billing_run(session: Session, run_id: str) -> BillingRun:
    run = session.scalars(sa.select(BillingRun).where(BillingRun.id == run_id)).first()
    if run is None:
        raise BillingRunNotFoundError(f"no billing run {run_id}")
    return run


def list_billing_runs(
    session: Session, *, limit: int, starting_after: str | None, status: str | None = None
) -> tuple[Sequence[BillingRun], bool]:
    stmt = sa.select(BillingRun)
    if status:
        stmt = stmt.where(BillingRun.status == status)
    return paginate(session, stmt, BillingRun.id, limit=limit, starting_after=starting_after)


def latest_billing_run(session: Session) -> BillingRun | None:
    return session.scalars(
        sa.select(BillingRun).order_by(BillingRun.created_at.desc(), BillingRun.id.desc())
    ).first()
