"""`abowerk gdpr ...`: operator commands (registered on the API blueprint's CLI group).

- `reapply-erasures`: after a restore of the main database, erase again every customer the
  erasure ledger names (idempotent; also retries payment providers that had failed);
- `sweep`: run the retention sweeper now, for one tenant or all;
- `notify-deadlines`: send due-soon and overdue notifications now.
"""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from compliance.reapply import reapply_erasures
from saas.kernel.clock import utcnow


@click.command("reapply-erasures")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's erasures.")
@with_appcontext
def reapply_erasures_cmd(tenant_id: str | None) -> None:
    """Re-apply every erasure of the ledger (run after restoring a backup)."""
    from saas.extensions import db
    from saas.gdpr.runtime import compliance_config

    cfg = compliance_config(current_app._get_current_object())  # type: ignore[attr-defined]
    report = reapply_erasures(db.engine, cfg, now=utcnow(), tenant_id=tenant_id)
    click.echo(json.dumps(report.as_dict(), sort_keys=True))


@click.command("sweep")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant.")
@with_appcontext
def sweep_cmd(tenant_id: str | None) -> None:
    """Run the retention sweeper now (expired exports, retention ends)."""
    from saas.extensions import db
    from saas.gdpr.runtime import compliance_config
    from saas.gdpr.tasks import sweep_tenant, tenant_ids

    cfg = compliance_config(current_app._get_current_object())  # type: ignore[attr-defined]
    totals: dict[str, int] = {}
    for tid in [tenant_id] if tenant_id else tenant_ids(db.engine):
        report = sweep_tenant(db.engine, cfg, tid, now=utcnow())
        for key, value in vars(report).items():
            totals[key] = totals.get(key, 0) + value
    click.echo(json.dumps(totals, sort_keys=True))


@click.command("notify-deadlines")
@with_appcontext
def notify_cmd() -> None:
    """Send `gdpr.request.due_soon` and `gdpr.request.overdue` now."""
    from saas.extensions import db
    from saas.gdpr.tasks import deadlines_for_tenant, tenant_ids

    totals = {"due_soon": 0, "overdue": 0}
    for tid in tenant_ids(db.engine):
        for key, value in deadlines_for_tenant(db.engine, tid, now=utcnow()).items():
            totals[key] += value
    click.echo(json.dumps(totals, sort_keys=True))
