from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.customers.models import Customer
from saas.kernel.direct import DirectSelect
from saas.kernel.errors import NotFoundError
from saas.kernel.pagination import paginate

_CUSTOMER_BY_ID = DirectSelect.scoped(
    Customer, Customer.__table__.c.id == sa.bindparam("customer_id")
)


def customer_view(session: Session, customer_id: str) -> Any:
    """The customer's columns as a row for the API's read by id (the most frequent request):
    through the driver, see saas.kernel.direct."""
    row = _CUSTOMER_BY_ID.first(session, {"customer_id": customer_id})
    if row is None:
        raise NotFoundError(f"no customer {customer_id}", code="customer_not_found")
    return row


def list_customers(
    session: Session, *, limit: int, starting_after: str | None, email: str | None = None
) -> tuple[Sequence[Customer], bool]:
    stmt = sa.select(Customer)
    if email:
        stmt = stmt.where(Customer.email == email)
    return paginate(session, stmt, Customer.id, limit=limit, starting_after=starting_after)
