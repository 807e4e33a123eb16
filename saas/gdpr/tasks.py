"""GDPR worker tasks (Huey), fanned out per tenant like the other periodic jobs.

- `gdpr_deadlines(tenant_id)`, hourly: `gdpr.request.due_soon` / `gdpr.request.overdue`;
- `gdpr_sweep(tenant_id)`, daily at 03:17 UTC: expired export files, and restricted documents
  whose retention ended (`compliance.sweeper`).

Registered when the API module is imported (`tasks.register()`), which every process that
builds the app does, the worker included.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from huey import crontab

from compliance import services, sweeper
from compliance.config import ComplianceConfig
from saas.kernel.tasks import tenant_session
from saas.tenants.models import Tenant

log = logging.getLogger("abowerk.gdpr")
_registered: dict[str, Any] = {}


def tenant_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(Tenant.id).where(Tenant.status == "active")).scalars())


def deadlines_for_tenant(engine: sa.Engine, tenant_id: str, *, now: datetime) -> dict[str, int]:
    with tenant_session(engine, tenant_id) as session:
        counts = services.notify_deadlines(session, now=now)
        session.commit()
    return counts


def sweep_tenant(
    engine: sa.Engine, cfg: ComplianceConfig, tenant_id: str, *, now: datetime
) -> sweeper.SweepReport:
    with tenant_session(engine, tenant_id) as session:
        report = sweeper.sweep(session, cfg, now=now)
        session.commit()
    if report.exports_deleted or report.documents_redacted or report.orphans_deleted:
        log.info(
            "gdpr sweep",
            extra={
                "fields": {
                    "tenant_id": tenant_id,
                    "exports_deleted": report.exports_deleted,
                    "orphans_deleted": report.orphans_deleted,
                    "documents_redacted": report.documents_redacted,
                    "on_legal_hold": report.on_legal_hold,
                }
            },
        )
    return report


def register() -> None:
    """Define the Huey tasks once per process (idempotent)."""
    if _registered:
        return
    from saas.extensions import db
    from saas.gdpr.runtime import compliance_config
    from saas.kernel.clock import utcnow
    from saas.worker import app_context, huey

    def _app() -> Flask:
        from flask import current_app

        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]

    @huey.task()
    def gdpr_deadlines(tenant_id: str) -> dict[str, int]:
        with app_context():
            return deadlines_for_tenant(db.engine, tenant_id, now=utcnow())

    @huey.task()
    def gdpr_sweep(tenant_id: str) -> int:
        with app_context():
            cfg = compliance_config(_app())
            report = sweep_tenant(db.engine, cfg, tenant_id, now=utcnow())
            return report.documents_redacted + report.exports_deleted

    @huey.periodic_task(crontab(minute="13"))
    def gdpr_deadlines_tick() -> None:
        with app_context():
            for tenant_id in tenant_ids(db.engine):
                gdpr_deadlines(tenant_id)

    @huey.periodic_task(crontab(minute="17", hour="3"))
    def gdpr_sweep_tick() -> None:
        with app_context():
            for tenant_id in tenant_ids(db.engine):
                gdpr_sweep(tenant_id)

    _registered.update(
        gdpr_deadlines=gdpr_deadlines,
        gdpr_sweep=gdpr_sweep,
        gdpr_deadlines_tick=gdpr_deadlines_tick,
        gdpr_sweep_tick=gdpr_sweep_tick,
    )


def task(name: str) -> Any:
    """A registered task by name (tests call them like the scheduler does)."""
    register()
    return _registered[name]
