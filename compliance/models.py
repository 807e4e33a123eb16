"""Compliance tables: data subject requests, restrictions, erased subjects, exports and their
download links, per-tenant settings, and the audit log (`compliance.audit`).

None of them holds personal data beyond free-text fields the tenant types (reasons, notes),
which are classified and scrubbed of the subject's identifiers on erasure. The erasure ledger
that survives a restore is *not* here: it lives in its own store (`compliance.ledger`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from compliance.audit import AuditEntry
from compliance.deadlines import RequestKind, RequestState, VerificationMethod
from compliance.retention import STATUTORY_YEARS, DocumentClass
from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

REQUEST_KINDS = tuple(k.value for k in RequestKind)
REQUEST_STATES = tuple(s.value for s in RequestState)
VERIFICATION_METHODS = tuple(m.value for m in VerificationMethod)
RESTRICTION_SCOPES = ("subject", "document")
# Art. 17(3)(b): kept for a legal obligation; Art. 18(1): restricted at the subject's request
RESTRICTION_BASES = ("legal_retention", "subject_request")
DOCUMENT_CLASSES = tuple(c.value for c in DocumentClass)

_PERSONAL = {"personal_data": True}


def _customer_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]
    )


class GdprRequest(TenantOwned, HasLivemode, Base):
    """A data subject request (Art. 15, 17, 18, 20) and its deadline (Art. 12(3))."""

    __tablename__ = "gdpr_requests"
    __table_args__ = (
        _customer_fk(),
        sa.CheckConstraint(f"kind IN {REQUEST_KINDS!r}", name="kind"),
        sa.CheckConstraint(f"state IN {REQUEST_STATES!r}", name="state"),
        sa.CheckConstraint(
            f"verification_method IS NULL OR verification_method IN {VERIFICATION_METHODS!r}",
            name="verification_method",
        ),
        sa.CheckConstraint(
            "extension_months >= 0 AND extension_months <= 2", name="extension_months"
        ),
        sa.Index("ix_gdpr_requests_tenant_id_customer_id", "tenant_id", "customer_id"),
        sa.Index("ix_gdpr_requests_tenant_id_state_due_at", "tenant_id", "state", "due_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    extension_months: Mapped[int] = mapped_column(sa.Integer(), default=0)
    extension_reason: Mapped[str | None] = mapped_column(sa.String(1000), info=_PERSONAL)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    identity_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(sa.String(64))
    verification_method: Mapped[str | None] = mapped_column(sa.String(32))
    verification_reference: Mapped[str | None] = mapped_column(sa.String(64))
    verification_note: Mapped[str | None] = mapped_column(sa.String(1000), info=_PERSONAL)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(1000), info=_PERSONAL)
    outcome: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)
    due_soon_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ErasedSubject(TenantOwned, HasLivemode, Base):
    """Marks a customer as erased (one row per customer); `compliance.ledger` keeps the same
    fact outside this database."""

    __tablename__ = "erased_subjects"
    __table_args__ = (_customer_fk(), sa.UniqueConstraint("tenant_id", "customer_id"))

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    request_id: Mapped[str | None] = mapped_column(sa.String(40))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reapplied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)


class Restriction(TenantOwned, HasLivemode, Base):
    """Processing restricted (Art. 18): a retained document of an erased customer, or every
    datum of a customer who asked for restriction.

    A document restriction keeps the document unchanged until `retention_ends_on` (computed
    per document class from the tenant's policy); the sweeper redacts it the day after,
    unless `legal_hold` is set. Owning modules hide restricted documents from listings,
    search and exports to third parties (`compliance.queries.restricted_document_ids`).
    """

    __tablename__ = "gdpr_restrictions"
    __table_args__ = (
        _customer_fk(),
        sa.UniqueConstraint("tenant_id", "scope", "document_type", "document_id"),
        sa.CheckConstraint(f"scope IN {RESTRICTION_SCOPES!r}", name="scope"),
        sa.CheckConstraint(f"basis IN {RESTRICTION_BASES!r}", name="basis"),
        sa.CheckConstraint(
            f"document_class IS NULL OR document_class IN {DOCUMENT_CLASSES!r}",
            name="document_class",
        ),
        sa.Index("ix_gdpr_restrictions_tenant_id_customer_id", "tenant_id", "customer_id"),
        sa.Index(
            "ix_gdpr_restrictions_tenant_id_retention_ends_on", "tenant_id", "retention_ends_on"
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    request_id: Mapped[str | None] = mapped_column(sa.String(40))
    scope: Mapped[str] = mapped_column(sa.String(16))
    basis: Mapped[str] = mapped_column(sa.String(32))
    provider: Mapped[str] = mapped_column(sa.String(64))
    document_type: Mapped[str] = mapped_column(sa.String(40))  # "customer" for the subject
    document_id: Mapped[str] = mapped_column(sa.String(40))
    document_class: Mapped[str | None] = mapped_column(sa.String(16))
    issued_on: Mapped[date | None] = mapped_column(sa.Date())
    retention_ends_on: Mapped[date | None] = mapped_column(sa.Date())
    # the owning module's own "keep until", a floor under the tenant's policy
    kept_until: Mapped[date | None] = mapped_column(sa.Date())
    test_clock_id: Mapped[str | None] = mapped_column(sa.String(40))
    legal_hold: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    legal_hold_reason: Mapped[str | None] = mapped_column(sa.String(1000), info=_PERSONAL)
    legal_hold_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    legal_hold_set_by: Mapped[str | None] = mapped_column(sa.String(64))
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GdprExport(TenantOwned, HasLivemode, Base):
    """An export ZIP under `<VAR_DIR>/exports/<tenant>/<id>.zip`, deleted after `expires_at`
    (or at once when its subject is erased)."""

    __tablename__ = "gdpr_exports"
    __table_args__ = (
        _customer_fk(),
        sa.Index("ix_gdpr_exports_tenant_id_expires_at", "tenant_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    file_name: Mapped[str] = mapped_column(sa.String(200))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GdprExportLink(TenantOwned, Base):
    """One single-use download link; the signed token names this row."""

    __tablename__ = "gdpr_export_links"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "export_id"],
            ["gdpr_exports.tenant_id", "gdpr_exports.id"],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    export_id: Mapped[str] = mapped_column(sa.String(40))
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GdprSettings(TenantOwned, Base):
    """A tenant's retention periods per document class (years, never below the statutory
    minimum), how long export links live and how early `gdpr.request.due_soon` is sent. No row
    means the defaults."""

    __tablename__ = "gdpr_settings"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        sa.CheckConstraint(
            f"invoice_retention_years >= {STATUTORY_YEARS[DocumentClass.INVOICE]}",
            name="invoice_retention_years",
        ),
        sa.CheckConstraint(
            f"credit_note_retention_years >= {STATUTORY_YEARS[DocumentClass.CREDIT_NOTE]}",
            name="credit_note_retention_years",
        ),
        sa.CheckConstraint(
            f"oss_record_retention_years >= {STATUTORY_YEARS[DocumentClass.OSS_RECORD]}",
            name="oss_record_retention_years",
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    invoice_retention_years: Mapped[int] = mapped_column(sa.Integer())
    credit_note_retention_years: Mapped[int] = mapped_column(sa.Integer())
    oss_record_retention_years: Mapped[int] = mapped_column(sa.Integer())
    export_ttl_hours: Mapped[int] = mapped_column(sa.Integer())
    due_soon_days: Mapped[int] = mapped_column(sa.Integer())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


__all__ = [
    "AuditEntry",
    "ErasedSubject",
    "GdprExport",
    "GdprExportLink",
    "GdprRequest",
    "GdprSettings",
    "Restriction",
]
