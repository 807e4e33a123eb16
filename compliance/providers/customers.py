"""Customers: the profile, the billing address, the VAT ID; and the subject resolver."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.models import ErasedSubject
from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    Provider,
    Registry,
    Subject,
    columns,
)
from compliance.tokens import erased_email, erased_text
from saas.customers.models import Customer

NAME = "customers"


def _customer(session: Session, customer_id: str) -> Customer | None:
    return session.scalars(sa.select(Customer).where(Customer.id == customer_id)).first()


def resolve(session: Session, customer_id: str) -> Subject | None:
    customer = _customer(session, customer_id)
    if customer is None:
        return None
    identifiers = (
        customer.email,
        customer.name,
        customer.address_line1,
        customer.address_line2,
        customer.vat_id,
        customer.external_ref,
    )
    return Subject(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        livemode=customer.livemode,
        email=customer.email,
        identifiers=tuple(v for v in identifiers if v),
        test_clock_id=customer.test_clock_id,
    )


def export(ctx: ExportContext) -> ExportPart:
    customer = _customer(ctx.session, ctx.subject.customer_id)
    if customer is None:
        return ExportPart()
    erased = (
        ctx.session.scalars(
            sa.select(ErasedSubject.id).where(ErasedSubject.customer_id == customer.id)
        ).first()
        is not None
    )
    records: dict[str, list[dict[str, Any]]] = {
        "profile": [
            {
                "customer_id": customer.id,
                "livemode": customer.livemode,
                "email": customer.email,
                "name": customer.name,
                "is_business": customer.is_business,
                "locale": customer.locale,
                "external_ref": customer.external_ref,
                "metadata": customer.metadata_,
                "created_at": customer.created_at,
                "updated_at": customer.updated_at,
                "erased": erased,
            }
        ],
        "addresses": [
            {
                "use": "billing",
                "line1": customer.address_line1,
                "line2": customer.address_line2,
                "postal_code": customer.postal_code,
                "city": customer.city,
                "state": customer.state,
                "country": customer.country,
            }
        ],
        "vat_id_checks": [],
    }
    if customer.vat_id:
        # every VAT ID passed the syntax and checksum check when it was entered; the tenant's
        # VIES check, when it reported one, is the last check on record
        vies = customer.vat_id_status is not None and customer.vat_id_checked_at is not None
        records["vat_id_checks"].append(
            {
                "vat_id": customer.vat_id,
                "method": "vies" if vies else "syntax",
                "result": customer.vat_id_status if vies else "valid",
                "checked_at": customer.vat_id_checked_at if vies else customer.updated_at,
                "consultation_number": None,
            }
        )
    return ExportPart(records=records)


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    customer = _customer(ctx.session, ctx.subject.customer_id)
    if customer is None:
        return report
    customer.email = erased_email()
    customer.name = erased_text()
    customer.address_line1 = None
    customer.address_line2 = None
    customer.postal_code = None
    customer.city = None
    customer.state = None
    customer.vat_id = None
    customer.vat_id_status = None
    customer.vat_id_checked_at = None
    customer.external_ref = None
    customer.metadata_ = {}
    customer.updated_at = ctx.now
    # country, locale and is_business stay: not identifying on their own, and the tax
    # treatment of the retained invoices depends on them
    report.count("customer_tokenized")
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns(
        "customers",
        [
            "email",
            "name",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "state",
            "vat_id",
            "external_ref",
            "metadata",
        ],
    ),
    purpose="customer account, contract and invoicing (Art. 6(1)(b) GDPR)",
    retention="while the customer relationship lasts; erased on request (tokens replace it)",
    export=export,
    erase=erase,
    categories=("profile", "addresses", "vat_id_checks"),
    order=90,  # last: the others look for the customer's values before they are replaced
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
    target.set_subject_resolver(resolve)
