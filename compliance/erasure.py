"""Erasure (Art. 17 GDPR) that keeps what tax law requires (Art. 17(3)(b)), pretix-style.

`erase_subject` runs every registered provider's eraser in order (subscriptions first, which
cancels active subscriptions; the customer record last), then:

- restricts each document an eraser kept (finalized invoices, credit notes, OSS records):
  unchanged, hidden, with a retention end per document class from the tenant's policy;
- asks each registered payment provider to delete the person's customer record there
  (Stripe: `DELETE /v1/customers/{id}`) and records the answer; a provider that is down is
  recorded as `failed` and retried by `abowerk gdpr reapply-erasures`;
- marks the customer erased (`erased_subjects`), writes an audit entry that carries only the
  HMAC of the e-mail address, and records the erasure in the ledger outside this database.

Values are replaced with random tokens, never hashes (`compliance.tokens`). Subscription
history and the MRR ledger hold surrogate ids and amounts only and stay as they are, so every
metric reads the same after an erasure (only the cancellation itself moves MRR, as any
cancellation does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance import audit
from compliance.config import ComplianceConfig
from compliance.errors import SubjectAlreadyErasedError, SubjectNotFoundError
from compliance.ledger import LedgerEntry
from compliance.models import ErasedSubject, GdprExport, Restriction
from compliance.registry import (
    ErasureContext,
    PaymentCustomerDeletion,
    RetainedDocument,
    Subject,
)
from compliance.retention import DocumentClass, retention_ends_on
from saas.kernel.errors import DomainError
from saas.kernel.ids import new_id

log = logging.getLogger("abowerk.gdpr")


@dataclass
class ErasureOutcome:
    customer_id: str
    providers: dict[str, dict[str, int]] = field(default_factory=dict)
    restrictions: list[str] = field(default_factory=list)
    payment_providers: list[dict[str, Any]] = field(default_factory=list)
    ledger_entry_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "providers": self.providers,
            "restrictions": self.restrictions,
            "payment_providers": self.payment_providers,
            "ledger_entry_id": self.ledger_entry_id,
        }


def is_erased(session: Session, customer_id: str) -> bool:
    stmt = sa.select(ErasedSubject.id).where(ErasedSubject.customer_id == customer_id)
    return session.scalars(stmt).first() is not None


def resolve_subject(session: Session, cfg: ComplianceConfig, customer_id: str) -> Subject:
    subject = cfg.registry.resolve(session, customer_id)
    if subject is None:
        raise SubjectNotFoundError(f"no customer {customer_id}")
    return subject


def restrict_document(
    session: Session,
    *,
    subject: Subject,
    provider: str,
    document: RetainedDocument,
    years: int,
    request_id: str | None,
    now: datetime,
) -> Restriction:
    """Restrict a retained document (or refresh its restriction when erasing again)."""
    existing = session.scalars(
        sa.select(Restriction).where(
            Restriction.scope == "document",
            Restriction.document_type == document.document_type,
            Restriction.document_id == document.document_id,
        )
    ).first()
    ends_on = retention_ends_on(document.issued_on, years)
    if document.kept_until is not None:
        ends_on = max(ends_on, document.kept_until)
    if existing is not None:
        existing.lifted_at = None
        existing.kept_until = document.kept_until
        if existing.redacted_at is None:
            existing.retention_ends_on = ends_on
        existing.updated_at = now
        return existing
    restriction = Restriction(
        id=new_id("rst"),
        livemode=subject.livemode,
        customer_id=subject.customer_id,
        request_id=request_id,
        scope="document",
        basis="legal_retention",
        provider=provider,
        document_type=document.document_type,
        document_id=document.document_id,
        document_class=document.document_class.value,
        issued_on=document.issued_on,
        retention_ends_on=ends_on,
        kept_until=document.kept_until,
        test_clock_id=subject.test_clock_id,
        legal_hold=False,
        created_at=now,
        updated_at=now,
    )
    session.add(restriction)
    return restriction


def _delete_at_payment_providers(
    session: Session, cfg: ComplianceConfig, subject: Subject
) -> list[PaymentCustomerDeletion]:
    results: list[PaymentCustomerDeletion] = []
    for name, deleter in cfg.registry.payment_deleters():
        try:
            results.extend(deleter(session, subject))
        except DomainError as err:  # unavailable: recorded, retried by reapply-erasures
            log.warning(
                "payment provider could not delete the customer",
                extra={
                    "fields": {
                        "provider": name,
                        "customer_id": subject.customer_id,
                        "code": err.code,
                    }
                },
            )
            results.append(PaymentCustomerDeletion(provider=name, status="failed", error=err.code))
    return results


def _delete_exports(
    session: Session, cfg: ComplianceConfig, customer_id: str, now: datetime
) -> int:
    exports = session.scalars(
        sa.select(GdprExport).where(
            GdprExport.customer_id == customer_id, GdprExport.deleted_at.is_(None)
        )
    ).all()
    for export in exports:
        cfg.export_path(export.tenant_id, export.id).unlink(missing_ok=True)
        export.deleted_at = now
    return len(exports)


def erase_subject(
    session: Session,
    cfg: ComplianceConfig,
    *,
    customer_id: str,
    retention_years: dict[DocumentClass, int],
    actor: str,
    now: datetime,
    request_id: str | None = None,
    reapplying: bool = False,
    erased_at: datetime | None = None,
) -> ErasureOutcome:
    """Erase one customer; the session must be scoped to the customer's tenant.

    Refuses an already erased customer (409 `customer_already_erased`) unless `reapplying`,
    in which case every eraser runs again: erasers are idempotent.
    """
    subject = resolve_subject(session, cfg, customer_id)
    marker = session.scalars(
        sa.select(ErasedSubject).where(ErasedSubject.customer_id == customer_id)
    ).first()
    if marker is not None and not reapplying:
        raise SubjectAlreadyErasedError(f"customer {customer_id} was erased on {marker.erased_at}")
    outcome = ErasureOutcome(customer_id=customer_id)
    context = ErasureContext(
        session=session,
        subject=subject,
        now=now,
        actor=actor,
        request_id=request_id,
        hmac_keys=cfg.hmac_keys,
        reapplying=reapplying,
    )
    for provider in cfg.registry.providers():
        if provider.erase is None:
            continue
        report = provider.erase(context)
        outcome.providers[provider.name] = dict(sorted(report.actions.items()))
        for document in report.retained:
            restriction = restrict_document(
                session,
                subject=subject,
                provider=provider.name,
                document=document,
                years=retention_years[document.document_class],
                request_id=request_id,
                now=now,
            )
            outcome.restrictions.append(restriction.id)
    exports_deleted = _delete_exports(session, cfg, customer_id, now)
    if exports_deleted:
        outcome.providers["gdpr_exports"] = {"export_deleted": exports_deleted}
    outcome.payment_providers = [
        {"provider": r.provider, "status": r.status, "reference": r.reference, "error": r.error}
        for r in _delete_at_payment_providers(session, cfg, subject)
    ]
    session.flush()

    summary = {"providers": outcome.providers, "payment_providers": outcome.payment_providers}
    if marker is None:
        marker = ErasedSubject(
            id=new_id("ers"),
            livemode=subject.livemode,
            customer_id=customer_id,
            request_id=request_id,
            erased_at=erased_at or now,
            reapplied_at=now if reapplying else None,
            outcome=summary,
        )
        session.add(marker)
    else:
        marker.reapplied_at = now
        marker.outcome = summary
    audit.record(
        session,
        action="gdpr.erasure.reapplied" if reapplying else "gdpr.erasure.completed",
        actor=actor,
        subject_type="customer",
        subject_id=customer_id,
        livemode=subject.livemode,
        now=now,
        hmac_key=cfg.hmac_key,
        subject_email=subject.email,
        details={"request_id": request_id, "restrictions": len(outcome.restrictions)},
    )
    session.flush()
    if not reapplying:
        # before the commit, on purpose (see compliance.ledger)
        entry = LedgerEntry(
            id=new_id("erl"),
            tenant_id=subject.tenant_id,
            customer_id=customer_id,
            livemode=subject.livemode,
            request_id=request_id,
            erased_at=now,
            actor=actor,
            actions=summary,
        )
        cfg.ledger.record(entry)
        outcome.ledger_entry_id = entry.id
    log.info(
        "customer erased",
        extra={
            "fields": {
                "customer_id": customer_id,
                "request_id": request_id,
                "restrictions": len(outcome.restrictions),
                "reapplied": reapplying,
            }
        },
    )
    return outcome
