from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.customers.models import Customer
from saas.kernel.pagination import paginate


def list_customers(
    session: Session, *, limit: int, starting_after: str | None, email: str | None = None
) -> tuple[Sequence[Customer], bool]:
    stmt = sa.select(Customer)
    if email:
        stmt = stmt.where(Customer.email == email)
    return paginate(session, stmt, Customer.id, limit=limit, starting_after=starting_after)
