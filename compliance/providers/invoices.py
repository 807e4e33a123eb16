"""Invoices and credit notes (`billing.invoices`): exported with their PDF and XML; kept and
restricted on erasure; deleted once their retention has ended. Read-only use of the billing
models, except the deletion after the retention period (see `redact_document`).

Personal data of the buyer lives in `invoices.snapshot_json` (the frozen snapshot: name,
address, VAT ID, e-invoice address), `invoice_documents.content` (the PDF/A-3 and the CII
XML), and possibly `invoice_lines.description`, `invoices.buyer_reference`,
`invoices.payment_note` and `invoices.metadata` (docs/invoicing.md). This provider covers all
of them.

- export: every invoice, credit note and draft of the person, restricted ones included
  (Art. 15 reaches them), with the stored PDF and XML as `invoices/<id>.pdf|.xml`;
- erase: drafts are deleted (nothing obliges anyone to keep them); finalized documents are
  not touched (GoBD; the ORM guard and PostgreSQL triggers forbid it anyway) but returned as
  kept: class `oss_record` when they have an OSS line (10 years), `credit_note` or `invoice`
  (8 years); the restriction lasts at least until the invoice's own `retention_ends_on`;
- redact after the retention period: a finalized invoice cannot be edited, so the whole
  document is deleted (its lines, VAT groups and rendered files go with it by cascade). Core
  statements are used on purpose: the ORM guard refuses every deletion of a finalized invoice,
  while PostgreSQL's trigger allows it once `retention_ends_on` has passed (by the real date:
  on a test clock the database refuses until then, and the sweeper retries). An invoice that
  a credit note still kept refers to waits for that credit note.

Restricted documents are hidden by `billing.invoices` listings through
`compliance.queries.restricted_document_ids(session, "invoice")` (credit notes are rows of
the same table and use the same document type).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.documents.model import snapshot_from_json
from billing.invoices.models import (
    CREDIT_NOTE,
    DRAFT,
    Invoice,
    InvoiceDocument,
)
from compliance.models import Restriction
from compliance.registry import (
    DocumentRef,
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportFile,
    ExportPart,
    Provider,
    Registry,
    RetainedDocument,
    columns,
)
from compliance.retention import DocumentClass
from saas.kernel.db import table_of

NAME = "invoices"
DOCUMENT_TYPE = "invoice"
_INVOICES = table_of(Invoice)
_DOCUMENTS = table_of(InvoiceDocument)


def _of_customer(session: Session, customer_id: str) -> list[Invoice]:
    stmt = sa.select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.id)
    return list(session.scalars(stmt))


def document_class(invoice: Invoice) -> DocumentClass:
    if invoice.oss_reportable:
        return DocumentClass.OSS_RECORD
    if invoice.kind == CREDIT_NOTE:
        return DocumentClass.CREDIT_NOTE
    return DocumentClass.INVOICE


def _buyer(invoice: Invoice) -> tuple[dict[str, Any] | None, str]:
    if invoice.snapshot_json is None:
        return None, ""
    snapshot = snapshot_from_json(invoice.snapshot_json)
    buyer, address = snapshot.buyer, snapshot.buyer.address
    return (
        {
            "name": buyer.name,
            "address": {
                "use": "billing",
                "line1": address.line1,
                "line2": address.line2,
                "postal_code": address.postal_code,
                "city": address.city,
                "state": None,
                "country": address.country,
            },
            "vat_id": buyer.vat_id,
        },
        snapshot.seller.legal_name,  # the seller's contact person stays out
    )


def export(ctx: ExportContext) -> ExportPart:
    session = ctx.session
    invoices = _of_customer(session, ctx.subject.customer_id)
    if not invoices:
        return ExportPart(records={"invoices": []})
    restricted = {
        r.document_id: r
        for r in session.scalars(
            sa.select(Restriction).where(
                Restriction.scope == "document",
                Restriction.document_type == DOCUMENT_TYPE,
                Restriction.customer_id == ctx.subject.customer_id,
            )
        )
    }
    documents = {
        (d.invoice_id, d.format): d
        for d in session.scalars(
            sa.select(InvoiceDocument).where(
                InvoiceDocument.invoice_id.in_([i.id for i in invoices])
            )
        )
    }
    part = ExportPart(records={"invoices": []})
    for invoice in invoices:
        buyer, seller_name = _buyer(invoice)
        files: dict[str, str | None] = {"pdf": None, "xml": None}
        for fmt in files:
            document = documents.get((invoice.id, fmt))
            if document is not None:
                files[fmt] = f"invoices/{invoice.id}.{fmt}"
                part.files.append(ExportFile(f"invoices/{invoice.id}.{fmt}", document.content))
        restriction = restricted.get(invoice.id)
        part.records["invoices"].append(
            {
                "invoice_id": invoice.id,
                "kind": invoice.kind,
                "number": invoice.number,
                "status": invoice.status,
                "issue_date": invoice.issued_on,
                "currency": invoice.currency,
                "net_amount": invoice.net_minor,
                "tax_amount": invoice.vat_minor,
                "gross_amount": invoice.gross_minor,
                "seller_name": seller_name,
                "buyer": buyer,
                "restricted": restriction is not None and restriction.lifted_at is None,
                "retention_ends_on": (
                    restriction.retention_ends_on if restriction else invoice.retention_ends_on
                ),
                "pdf_file": files["pdf"],
                "xml_file": files["xml"],
                "sha256": invoice.content_sha256,
            }
        )
    return part


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    for invoice in _of_customer(ctx.session, ctx.subject.customer_id):
        if invoice.status == DRAFT:
            ctx.session.delete(invoice)  # lines go with it (relationship cascade)
            report.count("draft_deleted")
            continue
        assert invoice.issued_on is not None  # finalized: the database guarantees it
        report.retained.append(
            RetainedDocument(
                DOCUMENT_TYPE,
                invoice.id,
                document_class(invoice),
                invoice.issued_on,
                kept_until=invoice.retention_ends_on,
            )
        )
    ctx.session.flush()
    return report


def redact_document(session: Session, ref: DocumentRef, now: datetime) -> dict[str, int] | None:
    tenant_id = str(session.info["abowerk.tenant_id"])
    where = sa.and_(_INVOICES.c.tenant_id == tenant_id, _INVOICES.c.id == ref.document_id)
    if session.execute(sa.select(_INVOICES.c.id).where(where)).first() is None:
        return {"invoice_already_deleted": 1}
    referring = session.execute(
        sa.select(sa.func.count())
        .select_from(_INVOICES)
        .where(
            _INVOICES.c.tenant_id == tenant_id,
            _INVOICES.c.corrects_invoice_id == ref.document_id,
        )
    ).scalar_one()
    if referring:
        return None  # a credit note that refers to it is still kept: wait for it
    files = session.execute(
        sa.select(sa.func.count())
        .select_from(_DOCUMENTS)
        .where(_DOCUMENTS.c.tenant_id == tenant_id, _DOCUMENTS.c.invoice_id == ref.document_id)
    ).scalar_one()
    # lines, VAT groups and rendered documents are deleted by ON DELETE CASCADE
    session.execute(sa.delete(_INVOICES).where(where))
    return {"invoice_deleted": 1, "documents_deleted": int(files)}


PROVIDER = Provider(
    name=NAME,
    covers=columns("invoices", ["snapshot_json", "buyer_reference", "payment_note", "metadata"])
    | columns("invoice_lines", ["description"])
    | columns("invoice_documents", ["content"]),
    purpose="invoicing and tax law (§ 14 UStG, § 147 AO; Art. 6(1)(c) GDPR)",
    retention=(
        "8 years from the end of the issue year (OSS records 10); restricted after an "
        "erasure, deleted when the retention has ended"
    ),
    export=export,
    erase=erase,
    categories=("invoices",),
    redact_document=redact_document,
    document_types=(DOCUMENT_TYPE,),
    order=20,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
