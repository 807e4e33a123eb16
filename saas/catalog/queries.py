from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.catalog.models import Plan, Price, Product
from saas.kernel.pagination import paginate


def list_products(
    session: Session, *, limit: int, starting_after: str | None, status: str | None = None
) -> tuple[Sequence[Product], bool]:
    stmt = sa.select(Product)
    if status:
        stmt = stmt.where(Product.status == status)
    return paginate(session, stmt, Product.id, limit=limit, starting_after=starting_after)


def list_plans(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    product_id: str | None = None,
    status: str | None = None,
) -> tuple[Sequence[Plan], bool]:
    stmt = sa.select(Plan)
    if product_id:
        stmt = stmt.where(Plan.product_id == product_id)
    if status:
        stmt = stmt.where(Plan.status == status)
    return paginate(session, stmt, Plan.id, limit=limit, starting_after=starting_after)


def list_prices(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    plan_id: str | None = None,
    lineage_id: str | None = None,
    status: str | None = None,
) -> tuple[Sequence[Price], bool]:
    stmt = sa.select(Price)
    if plan_id:
        stmt = stmt.where(Price.plan_id == plan_id)
    if lineage_id:
        stmt = stmt.where(Price.lineage_id == lineage_id)
    if status:
        stmt = stmt.where(Price.status == status)
    return paginate(session, stmt, Price.id, limit=limit, starting_after=starting_after)
