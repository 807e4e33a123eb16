"""Customer use cases. Callers pass the session (already scoped to a tenant) and `now`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.customers.models import Customer
from saas.customers.validation import normalise_vat_id
from saas.events.services import emit_event
from saas.kernel import tenancy
from saas.kernel.errors import ConflictError, NotFoundError, ValidationFailedError
from saas.kernel.ids import new_id
from saas.testclocks.queries import get_test_clock

_ADDRESS_COLUMNS = {
    "line1": "address_line1",
    "line2": "address_line2",
    "postal_code": "postal_code",
    "city": "city",
    "state": "state",
    "country": "country",
}


# built once: every read by id would otherwise build and coerce the same expression again
_CUSTOMER_BY_ID = tenancy.reusable(
    sa.select(Customer).where(Customer.id == sa.bindparam("customer_id"))
)


def get_customer(session: Session, customer_id: str) -> Customer:
    customer = session.scalars(_CUSTOMER_BY_ID, {"customer_id": customer_id}).first()
    if customer is None:
        raise NotFoundError(f"no customer {customer_id}", code="customer_not_found")
    return customer


def _check_external_ref_free(session: Session, ref: str | None, exclude_id: str | None) -> None:
    if not ref:
        return
    stmt = sa.select(Customer.id).where(Customer.external_ref == ref)
    if exclude_id:
        stmt = stmt.where(Customer.id != exclude_id)
    if session.scalars(stmt).first() is not None:
        raise ConflictError(
            f"another customer has external_ref {ref!r}",
            code="external_ref_taken",
            errors={"external_ref": ["already used by another customer"]},
        )


def create_customer(session: Session, data: dict[str, Any], *, now: datetime) -> Customer:
    _check_external_ref_free(session, data.get("external_ref"), None)
    test_clock_id = data.get("test_clock_id")
    if test_clock_id:
        test_clock_id = get_test_clock(session, test_clock_id).id  # 404 unless in this mode
    customer = Customer(
        id=new_id("cus"),
        email=data["email"],
        name=data["name"],
        is_business=data.get("is_business", False),
        vat_id=data.get("vat_id") or None,
        locale=data.get("locale", "de-DE"),
        external_ref=data.get("external_ref"),
        metadata_=data.get("metadata", {}),
        test_clock_id=test_clock_id or None,
        created_at=now,
        updated_at=now,
    )
    for key, column in _ADDRESS_COLUMNS.items():
        setattr(customer, column, data["address"].get(key))
    _set_vat_id_check(customer, data.get("vat_id_check"))
    session.add(customer)
    session.flush()
    emit_event(session, "customer.created", {"object": _payload(customer)}, now=now)
    return customer


def update_customer(
    session: Session, customer_id: str, data: dict[str, Any], *, now: datetime
) -> Customer:
    customer = get_customer(session, customer_id)
    before_vat_id = customer.vat_id
    if "external_ref" in data:
        _check_external_ref_free(session, data["external_ref"], customer.id)
    for field in ("email", "name", "is_business", "locale", "external_ref"):
        if field in data:
            setattr(customer, field, data[field])
    if "metadata" in data:
        customer.metadata_ = data["metadata"]
    if "address" in data:
        for key, column in _ADDRESS_COLUMNS.items():
            setattr(customer, column, data["address"].get(key))
    if "vat_id" in data or "address" in data:
        raw = data.get("vat_id", customer.vat_id)
        if raw:
            try:
                customer.vat_id = normalise_vat_id(raw, customer.country)
            except ValueError as exc:
                raise ValidationFailedError(str(exc), errors={"vat_id": [str(exc)]}) from exc
        else:
            customer.vat_id = None
    if "vat_id_check" in data:
        _set_vat_id_check(customer, data["vat_id_check"])
    elif customer.vat_id != before_vat_id:
        _set_vat_id_check(customer, None)  # a new VAT ID has not been checked yet
    customer.updated_at = now
    session.flush()
    emit_event(session, "customer.updated", {"object": _payload(customer)}, now=now)
    return customer


def _set_vat_id_check(customer: Customer, check: dict[str, Any] | None) -> None:
    """Record the result of the caller's VIES check; without a VAT ID there is none."""
    if check is None or not customer.vat_id:
        customer.vat_id_status = None
        customer.vat_id_checked_at = None
        return
    customer.vat_id_status = check["status"]
    customer.vat_id_checked_at = check["checked_at"]


def _payload(customer: Customer) -> dict[str, Any]:
    from saas.customers.schemas import CustomerSchema

    return dict(CustomerSchema().dump(customer))
