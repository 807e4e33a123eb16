from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.customers.models import Customer
from saas.kernel.direct import DirectSelect
from saas.kernel.errors import NotFoundError
from saas.kernel.pagination import split_page

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


def _list_statement(by_email: bool, after: bool) -> DirectSelect:
    columns = Customer.__table__.c
    where = []
    if by_email:
        where.append(columns.email == sa.bindparam("email"))
    if after:  # the cursor, as saas.kernel.pagination.paginate: ids are time-ordered
        where.append(columns.id < sa.bindparam("starting_after"))
    return DirectSelect.scoped(
        Customer, *where, order_by=columns.id.desc(), limit=sa.bindparam("limit")
    )


# a list page is the second most frequent read; one statement per combination of filters
_LISTS = {(e, a): _list_statement(e, a) for e in (False, True) for a in (False, True)}


def list_customers(
    session: Session, *, limit: int, starting_after: str | None, email: str | None = None
) -> tuple[Sequence[Any], bool]:
    """A page of customers (rows as `customer_view` returns them) and whether more follow."""
    statement = _LISTS[bool(email), bool(starting_after)]
    rows = statement.all(
        session, {"email": email, "starting_after": starting_after, "limit": limit + 1}
    )
    return split_page(rows, limit)
