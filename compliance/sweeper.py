"""The retention sweeper: a periodic task per tenant (`saas.gdpr.tasks`).

1. Export ZIPs past their expiry are deleted (and orphaned files of rolled-back exports).
2. Restricted documents whose retention period has ended (the day after
   `retention_ends_on`, in the tenant's zone, on the customer's test clock when there is one)
   and that are not on legal hold are handed to their provider's redactor, which removes the
   remaining personal data (the buyer in the snapshot) and deletes the stored files. The
   restriction stays, marked `redacted_at`, so the document stays hidden.

Every action is logged (`abowerk.gdpr`, ids only) and audited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance import audit
from compliance.config import ComplianceConfig
from compliance.models import GdprExport, Restriction
from compliance.registry import DocumentRef
from compliance.retention import may_be_redacted
from saas.kernel.tenancy import current_tenant
from saas.tenants.models import Tenant
from saas.testclocks.queries import clock_now

log = logging.getLogger("abowerk.gdpr")
ORPHAN_GRACE = timedelta(hours=1)


@dataclass
class SweepReport:
    exports_deleted: int = 0
    orphans_deleted: int = 0
    documents_redacted: int = 0
    on_legal_hold: int = 0
    without_provider: int = 0
    postponed: int = 0
    refused_by_database: int = 0


def delete_export(cfg: ComplianceConfig, export: GdprExport, *, now: datetime) -> None:
    cfg.export_path(export.tenant_id, export.id).unlink(missing_ok=True)
    export.deleted_at = export.deleted_at or now


def _sweep_exports(
    session: Session, cfg: ComplianceConfig, tenant_id: str, now: datetime, report: SweepReport
) -> None:
    expired = session.scalars(
        sa.select(GdprExport).where(GdprExport.deleted_at.is_(None), GdprExport.expires_at <= now)
    ).all()
    for export in expired:
        delete_export(cfg, export, now=now)
        report.exports_deleted += 1
        log.info("export expired and deleted", extra={"fields": {"export_id": export.id}})
    folder = cfg.export_dir / tenant_id
    if not folder.is_dir():
        return
    live = set(
        session.scalars(sa.select(GdprExport.id).where(GdprExport.deleted_at.is_(None))).all()
    )
    # file times are real time (test clocks only simulate the business's time)
    cutoff = time.time() - ORPHAN_GRACE.total_seconds()
    for path in folder.iterdir():
        export_id = path.name.split(".", 1)[0]
        if export_id not in live and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            report.orphans_deleted += 1
            log.info("orphaned export file deleted", extra={"fields": {"export_id": export_id}})


def _sweep_documents(
    session: Session, cfg: ComplianceConfig, now: datetime, report: SweepReport
) -> None:
    tenant = session.get(Tenant, current_tenant(session))
    assert tenant is not None
    zone = ZoneInfo(tenant.timezone)
    candidates = session.scalars(
        sa.select(Restriction)
        .where(
            Restriction.scope == "document",
            Restriction.redacted_at.is_(None),
            Restriction.retention_ends_on.is_not(None),
        )
        .order_by(Restriction.id)
    ).all()
    for restriction in candidates:
        assert restriction.retention_ends_on is not None
        at = clock_now(session, restriction.test_clock_id, now)
        today = at.astimezone(zone).date()
        if not may_be_redacted(restriction.retention_ends_on, today, legal_hold=False):
            continue
        if restriction.legal_hold:
            report.on_legal_hold += 1
            continue
        provider = cfg.registry.provider(restriction.provider)
        if provider is None or provider.redact_document is None:
            report.without_provider += 1
            log.warning(
                "retention ended but no provider can redact the document",
                extra={
                    "fields": {
                        "restriction_id": restriction.id,
                        "provider": restriction.provider,
                    }
                },
            )
            continue
        ref = DocumentRef(
            restriction.document_type, restriction.document_id, restriction.customer_id
        )
        try:
            with _savepoint(session):
                actions = provider.redact_document(session, ref, at)
        except sa.exc.DBAPIError:
            report.refused_by_database += 1
            log.warning(
                "retention ended but the database refused to redact the document",
                extra={"fields": {"restriction_id": restriction.id}},
            )
            continue
        if actions is None:
            report.postponed += 1
            continue
        restriction.redacted_at = at
        restriction.updated_at = now
        audit.record(
            session,
            action="gdpr.retention.redacted",
            actor="system",
            subject_type="customer",
            subject_id=restriction.customer_id,
            livemode=restriction.livemode,
            now=at,
            details={
                "restriction_id": restriction.id,
                "document_type": restriction.document_type,
                "document_id": restriction.document_id,
                "result": ",".join(f"{k}={v}" for k, v in sorted(actions.items())),
            },
        )
        report.documents_redacted += 1
        log.info(
            "retention ended: document redacted",
            extra={
                "fields": {
                    "restriction_id": restriction.id,
                    "document_type": restriction.document_type,
                    "document_id": restriction.document_id,
                    "retention_ended_on": restriction.retention_ends_on.isoformat(),
                }
            },
        )


@contextmanager
def _savepoint(session: Session) -> Iterator[None]:
    """A savepoint per document on PostgreSQL: one the database refuses (its triggers keep
    finalized invoices until their `retention_ends_on` by the *real* date, which a test clock
    cannot move) does not stop the sweep of the others. SQLite has no such triggers, and
    pysqlite's SAVEPOINT handling would commit early, so there it is a plain block."""
    if session.get_bind().dialect.name == "postgresql":
        with session.begin_nested():
            yield
    else:
        yield


def sweep(session: Session, cfg: ComplianceConfig, *, now: datetime) -> SweepReport:
    """One tenant's sweep; the session is scoped to it. Flushes, the caller commits."""
    report = SweepReport()
    tenant_id = current_tenant(session)
    _sweep_exports(session, cfg, tenant_id, now, report)
    _sweep_documents(session, cfg, now, report)
    session.flush()
    return report
