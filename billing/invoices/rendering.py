"""Rendering the documents of a finalized invoice from its stored snapshot, and storing them.

Storage choice: the bytes live in the database (``invoice_documents``, one row per invoice
and format), not in files. They are then in the same backup, behind the same tenant scoping
and row-level security as the invoice, reachable from any worker host, and easy to find and
delete by ``(tenant_id, invoice_id)`` for the GDPR issue. A PDF is 30–60 kB; GoBD (as
amended 14.07.2025) would even allow dropping it and regenerating a content-identical copy
from the snapshot, which the stored ``snapshot_sha256`` and ``renderer`` make checkable.

Rendering is deterministic (:mod:`billing.documents.pdf`), so the worker task and a download
that comes first produce the same bytes; whoever stores first wins
(``INSERT … ON CONFLICT DO NOTHING``) and everybody serves the stored row. Before rendering,
the stored snapshot is checked against its SHA-256 and its recomputed totals.

Finalization never renders: it records the invoice in ``session.info`` and, after the
commit, the hooks registered with :func:`on_documents_requested` (the worker's task queue)
are called. A rolled-back finalization requests nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib.metadata import version

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billing.documents.errors import SnapshotIntegrityError
from billing.documents.model import InvoiceSnapshot, snapshot_from_json
from billing.invoices.models import Invoice, InvoiceDocument
from saas.kernel.db import table_of
from saas.kernel.ids import new_id

PDF = "pdf"
XML = "xml"
MEDIA_TYPES = {PDF: "application/pdf", XML: "application/xml"}
_PENDING_KEY = "abowerk.pending_invoice_documents"
_HOOKS: list[Callable[[list[tuple[str, str]]], None]] = []


@cache
def renderer_version() -> str:
    """The software stack the bytes depend on (recorded with every stored document)."""
    parts = [f"{name} {version(name)}" for name in ("abowerk", "drafthorse", "weasyprint")]
    return "; ".join(parts)


_TABLE = table_of(InvoiceDocument)


def stored_snapshot(invoice: Invoice) -> InvoiceSnapshot:
    """The invoice's snapshot, after checking its hash and its totals."""
    if invoice.snapshot_json is None or invoice.content_sha256 is None:
        raise SnapshotIntegrityError("the invoice has no snapshot", errors={"snapshot": "none"})
    if hashlib.sha256(invoice.snapshot_json).hexdigest() != invoice.content_sha256:
        raise SnapshotIntegrityError(
            f"the stored snapshot of {invoice.id} does not match its SHA-256",
            errors={"content_sha256": "mismatch"},
        )
    return snapshot_from_json(invoice.snapshot_json)


def find_document(session: Session, invoice: Invoice, fmt: str) -> InvoiceDocument | None:
    return session.scalars(
        sa.select(InvoiceDocument).where(
            InvoiceDocument.invoice_id == invoice.id, InvoiceDocument.format == fmt
        )
    ).first()


def _insert(session: Session, invoice: Invoice, fmt: str, content: bytes, now: datetime) -> None:
    values = {
        "tenant_id": invoice.tenant_id,
        "id": new_id("doc"),
        "livemode": invoice.livemode,
        "invoice_id": invoice.id,
        "format": fmt,
        "media_type": MEDIA_TYPES[fmt],
        "content": content,
        "sha256": hashlib.sha256(content).hexdigest(),
        "size_bytes": len(content),
        "snapshot_sha256": invoice.content_sha256,
        "renderer": renderer_version(),
        "rendered_at": now,
    }
    conflict = ["tenant_id", "invoice_id", "format"]
    if session.get_bind().dialect.name == "postgresql":
        stmt: sa.Insert = (
            postgresql.insert(_TABLE)
            .values(**values)
            .on_conflict_do_nothing(index_elements=conflict)
        )
    else:
        stmt = (
            sqlite.insert(_TABLE).values(**values).on_conflict_do_nothing(index_elements=conflict)
        )
    session.execute(stmt)


def render_documents(session: Session, invoice: Invoice, *, now: datetime) -> int:
    """Render and store the PDF and XML of ``invoice`` unless they are stored already;
    returns how many documents were rendered. The caller commits."""
    missing = [fmt for fmt in (XML, PDF) if find_document(session, invoice, fmt) is None]
    if not missing:
        return 0
    snapshot = stored_snapshot(invoice)
    from billing.documents.pdf import render_invoice  # WeasyPrint: only where PDFs are made

    rendered = render_invoice(snapshot)
    content = {XML: rendered.xml, PDF: rendered.pdf}
    for fmt in missing:
        _insert(session, invoice, fmt, content[fmt], now)
    return len(missing)


def document(session: Session, invoice: Invoice, fmt: str, *, now: datetime) -> InvoiceDocument:
    """The stored document, rendering (and storing) it first if the worker has not yet."""
    found = find_document(session, invoice, fmt)
    if found is None:
        render_documents(session, invoice, now=now)
        found = find_document(session, invoice, fmt)
    if found is None:  # pragma: no cover - the insert above or a concurrent one stored it
        raise RuntimeError(f"document {fmt} of {invoice.id} was not stored")
    return found


# --- after commit: ask the worker -------------------------------------------------------------


def request_documents(session: Session, invoice: Invoice) -> None:
    """Ask for the documents of ``invoice`` to be rendered once this transaction commits."""
    session.info.setdefault(_PENDING_KEY, []).append((invoice.tenant_id, invoice.id))


def on_documents_requested(hook: Callable[[list[tuple[str, str]]], None]) -> None:
    """Register a callable receiving ``[(tenant_id, invoice_id), …]`` after each commit."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        for hook in _HOOKS:
            hook(list(pending))


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


if not event.contains(Session, "after_commit", _after_commit):
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
