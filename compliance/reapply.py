"""Re-applying past erasures after a restore of the main database (`abowerk gdpr
reapply-erasures`).

A backup taken before an erasure brings the erased person back when it is restored. The
erasure ledger (`compliance.ledger`) is not part of that backup; this module walks it, oldest
first, and erases each customer again in a transaction of its own: every eraser is idempotent,
documents are restricted again, payment providers are asked again (which also retries a
deletion that had failed). A customer the restored database does not know (the backup is older
than the customer) is skipped: there is nothing to erase. An erasure request that the backup
shows as still in progress is marked completed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from compliance.config import ComplianceConfig
from compliance.deadlines import RequestState
from compliance.erasure import erase_subject
from compliance.models import GdprRequest
from compliance.services import effective_settings
from saas.kernel.tasks import tenant_session
from saas.tenants.models import Tenant

log = logging.getLogger("abowerk.gdpr")


@dataclass
class ReapplyReport:
    entries: int = 0
    reapplied: int = 0
    customer_missing: int = 0
    tenant_missing: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "reapplied": self.reapplied,
            "customer_missing": self.customer_missing,
            "tenant_missing": self.tenant_missing,
            "failed": self.failed,
        }


def reapply_erasures(
    engine: sa.Engine,
    cfg: ComplianceConfig,
    *,
    now: datetime,
    tenant_id: str | None = None,
    actor: str = "operator",
) -> ReapplyReport:
    report = ReapplyReport()
    for entry in cfg.ledger.entries(tenant_id):
        report.entries += 1
        with engine.connect() as conn:
            tenant_exists = conn.execute(
                sa.select(Tenant.id).where(Tenant.id == entry.tenant_id)
            ).first()
        if tenant_exists is None:
            report.tenant_missing += 1
            continue
        with tenant_session(engine, entry.tenant_id) as session:
            if cfg.registry.resolve(session, entry.customer_id) is None:
                report.customer_missing += 1
                continue
            try:
                erase_subject(
                    session,
                    cfg,
                    customer_id=entry.customer_id,
                    retention_years=effective_settings(session).retention_years,
                    actor=actor,
                    now=now,
                    request_id=entry.request_id,
                    reapplying=True,
                    erased_at=entry.erased_at,
                )
                request = (
                    session.scalars(
                        sa.select(GdprRequest).where(GdprRequest.id == entry.request_id)
                    ).first()
                    if entry.request_id
                    else None
                )
                if request is not None and request.state == RequestState.IN_PROGRESS:
                    request.state = RequestState.COMPLETED.value
                    request.completed_at = entry.erased_at
                    request.updated_at = now
                session.commit()
            except Exception:
                session.rollback()
                log.exception(
                    "re-applying an erasure failed",
                    extra={"fields": {"ledger_entry_id": entry.id}},
                )
                report.failed.append(entry.id)
                continue
        cfg.ledger.mark_reapplied(entry.id, now)
        report.reapplied += 1
    return report
