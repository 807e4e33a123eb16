"""Reads: request lists (with the overdue list), restrictions, the audit log, and the checks
other modules make ("is this document restricted?", "is this customer erased?")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.audit import AuditEntry
from compliance.deadlines import OPEN_STATES
from compliance.models import ErasedSubject, GdprRequest, Restriction
from saas.kernel.pagination import paginate


def list_requests(
    session: Session,
    *,
    limit: int,
    starting_after: str | None,
    now: datetime,
    state: str | None = None,
    kind: str | None = None,
    customer_id: str | None = None,
    overdue: bool = False,
) -> tuple[Sequence[GdprRequest], bool]:
    stmt = sa.select(GdprRequest)
    if state:
        stmt = stmt.where(GdprRequest.state == state)
    if kind:
        stmt = stmt.where(GdprRequest.kind == kind)
    if customer_id:
        stmt = stmt.where(GdprRequest.customer_id == customer_id)
    if overdue:
        stmt = stmt.where(
            GdprRequest.state.in_([s.value for s in OPEN_STATES]), GdprRequest.due_at <= now
        )
    return paginate(session, stmt, GdprRequest.id, limit=limit, starting_after=starting_after)


def list_restrictions(
    session: Session, *, limit: int, starting_after: str | None, customer_id: str | None = None
) -> tuple[Sequence[Restriction], bool]:
    stmt = sa.select(Restriction)
    if customer_id:
        stmt = stmt.where(Restriction.customer_id == customer_id)
    return paginate(session, stmt, Restriction.id, limit=limit, starting_after=starting_after)


def list_audit_entries(
    session: Session, *, limit: int, starting_after: str | None, subject_id: str | None = None
) -> tuple[Sequence[AuditEntry], bool]:
    stmt = sa.select(AuditEntry)
    if subject_id:
        stmt = stmt.where(AuditEntry.subject_id == subject_id)
    return paginate(session, stmt, AuditEntry.id, limit=limit, starting_after=starting_after)


def restricted_documents(document_type: str) -> sa.Select[str]:
    """A subquery of the ids of documents of a type that listings, search and third-party
    exports must hide (invoices of erased customers, kept for the tax authorities only), for
    `.where(Model.id.not_in(restricted_documents("invoice")))`."""
    return sa.select(Restriction.document_id).where(
        Restriction.scope == "document",
        Restriction.document_type == document_type,
        Restriction.lifted_at.is_(None),
    )


def restricted_document_ids(session: Session, document_type: str) -> set[str]:
    return set(session.scalars(restricted_documents(document_type)))


def is_subject_restricted(session: Session, customer_id: str) -> bool:
    """True while the customer's processing is restricted at their request (Art. 18)."""
    stmt = sa.select(Restriction.id).where(
        Restriction.scope == "subject",
        Restriction.document_id == customer_id,
        Restriction.lifted_at.is_(None),
    )
    return session.scalars(stmt).first() is not None


def erased_customer_ids(session: Session) -> set[str]:
    return set(session.scalars(sa.select(ErasedSubject.customer_id)))
