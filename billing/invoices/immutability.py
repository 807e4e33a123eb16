"""The ORM wall around finalized invoices (GoBD: issued invoices are unalterable; § 146 Abs. 4
AO: no change may hide the original content).

``before_flush`` refuses, with :class:`InvoiceImmutableError` (409 ``invoice_immutable``):

* any change to a column of a finalized invoice outside
  :data:`~billing.invoices.models.MUTABLE_AFTER_FINALIZATION`, or its status going back to
  ``draft``;
* deleting a finalized invoice, or adding, changing or deleting a line of one;
* changing a VAT group, a rendered document or a logged number skip, or deleting a VAT
  group or a skip (append-only rows; documents may be deleted, they can be regenerated).

"Finalized" means the status *as loaded from the database* is not ``draft``, so the flush
that finalizes a draft may still write its content. Bulk ``UPDATE``/``DELETE`` statements
on these tables are refused outright: they bypass the unit of work that this guard
inspects. PostgreSQL triggers (migration 0005) repeat the rule in the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from billing.invoices.errors import InvoiceImmutableError
from billing.invoices.models import (
    DRAFT,
    MUTABLE_AFTER_FINALIZATION,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    InvoiceNumberSkip,
    InvoiceTaxGroup,
)

_APPEND_ONLY = (InvoiceTaxGroup, InvoiceDocument, InvoiceNumberSkip)
_GUARDED = (Invoice, InvoiceLine, InvoiceTaxGroup, InvoiceDocument)


def loaded_status(invoice: Invoice) -> str | None:
    """The invoice's status as the database has it (None for a new object)."""
    state = inspect(invoice)
    if state.transient or state.pending:
        return None
    history = state.attrs.status.history
    if history.deleted:
        return str(history.deleted[0])
    return invoice.status


def _frozen(invoice: Invoice | None) -> bool:
    return invoice is not None and loaded_status(invoice) not in (None, DRAFT)


def _parent(session: Session, line: InvoiceLine) -> Invoice | None:
    with session.no_autoflush:
        return session.get(Invoice, (line.tenant_id, line.invoice_id))


def _check_invoice(invoice: Invoice) -> None:
    if not _frozen(invoice):
        return
    state = inspect(invoice)
    changed = sorted(
        attr.key
        for attr in state.attrs
        if attr.key not in MUTABLE_AFTER_FINALIZATION and attr.history.has_changes()
    )
    if changed:
        raise InvoiceImmutableError(
            f"invoice {invoice.id} is finalized; refused to change {', '.join(changed)}",
            errors={key: ["frozen after finalization"] for key in changed},
        )
    if invoice.status == DRAFT:
        raise InvoiceImmutableError(f"invoice {invoice.id} is finalized; it cannot become a draft")


def _refuse_frozen_changes(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, Invoice):
            _check_invoice(obj)
        elif isinstance(obj, InvoiceLine):
            if session.is_modified(obj) and _frozen(_parent(session, obj)):
                raise InvoiceImmutableError(f"line {obj.id} belongs to a finalized invoice")
        elif isinstance(obj, _APPEND_ONLY) and session.is_modified(obj):
            raise InvoiceImmutableError(f"{type(obj).__tablename__} rows are never changed")
    for obj in session.new:
        if isinstance(obj, InvoiceLine) and _frozen(_parent(session, obj)):
            raise InvoiceImmutableError(f"invoice {obj.invoice_id} is finalized; no new lines")
    for obj in session.deleted:
        if isinstance(obj, Invoice) and _frozen(obj):
            raise InvoiceImmutableError(f"invoice {obj.id} is finalized and cannot be deleted")
        if isinstance(obj, InvoiceLine) and _frozen(_parent(session, obj)):
            raise InvoiceImmutableError(f"line {obj.id} belongs to a finalized invoice")
        if isinstance(obj, InvoiceTaxGroup | InvoiceNumberSkip):
            raise InvoiceImmutableError(f"{type(obj).__tablename__} rows are never deleted")


def _refuse_bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        m.class_ in _GUARDED for m in state.all_mappers
    ):
        raise InvoiceImmutableError(
            "bulk UPDATE/DELETE on invoice tables is not allowed: change objects through the "
            "session so the finalization guard sees them"
        )


def install() -> None:
    """Attach the guard to every Session (idempotent)."""
    if event.contains(Session, "before_flush", _refuse_frozen_changes):
        return
    event.listen(Session, "before_flush", _refuse_frozen_changes)
    event.listen(Session, "do_orm_execute", _refuse_bulk)


install()
