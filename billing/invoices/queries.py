"""Reads for invoice and credit note lists (newest first, cursor pagination)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from billing.invoices.models import CREDIT_NOTE, INVOICE_KINDS, Invoice, InvoiceDocument
from compliance.queries import restricted_documents
from saas.kernel.direct import DirectSelect
from saas.kernel.pagination import paginate

# Art. 18 GDPR: documents kept only for the tax authorities after an erasure do not appear in
# normal listings (they stay retrievable by id for the tenant's bookkeeping and the auditor).
_RESTRICTED = restricted_documents("invoice")


def list_invoices(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    status: str | None = None,
    customer_id: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
) -> tuple[Sequence[Invoice], bool]:
    stmt = (
        sa.select(Invoice)
        .where(Invoice.kind.in_(INVOICE_KINDS), Invoice.id.not_in(_RESTRICTED))
        .options(selectinload(Invoice.lines), selectinload(Invoice.tax_groups))
    )
    if status:
        stmt = stmt.where(Invoice.status == status)
    if customer_id:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if issued_from:
        stmt = stmt.where(Invoice.issued_on >= issued_from)
    if issued_to:
        stmt = stmt.where(Invoice.issued_on <= issued_to)
    return paginate(session, stmt, Invoice.id, limit=limit, starting_after=starting_after)


def list_credit_notes(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    invoice_id: str | None = None,
    customer_id: str | None = None,
) -> tuple[Sequence[Invoice], bool]:
    stmt = (
        sa.select(Invoice)
        .where(Invoice.kind == CREDIT_NOTE, Invoice.id.not_in(_RESTRICTED))
        .options(selectinload(Invoice.lines), selectinload(Invoice.tax_groups))
    )
    if invoice_id:
        stmt = stmt.where(Invoice.corrects_invoice_id == invoice_id)
    if customer_id:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    return paginate(session, stmt, Invoice.id, limit=limit, starting_after=starting_after)


# Downloads of stored documents are frequent and need none of the invoice but its status and
# number: two reads through the driver (saas.kernel.direct) instead of loading the invoice
# and the document through the ORM.
_HEAD = DirectSelect.scoped(
    Invoice,
    Invoice.__table__.c.id == sa.bindparam("document_id"),
    attributes=("id", "kind", "status", "number"),
)
_STORED = DirectSelect.scoped(
    InvoiceDocument,
    InvoiceDocument.__table__.c.invoice_id == sa.bindparam("document_id"),
    InvoiceDocument.__table__.c.format == sa.bindparam("format"),
    attributes=("content", "media_type", "sha256"),
)


def document_head(session: Session, document_id: str) -> Any | None:
    """Id, kind, status and number of an invoice or credit note (a row), or None."""
    return _HEAD.first(session, {"document_id": document_id})


def stored_document(session: Session, document_id: str, fmt: str) -> Any | None:
    """The stored PDF or XML of a document (content, media_type, sha256), or None."""
    return _STORED.first(session, {"document_id": document_id, "format": fmt})
