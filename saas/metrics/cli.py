"""`abowerk metrics …`: the analysts' event-file command (pure, `billing.metrics.cli`) and
the operator commands on the ledger.

- `abowerk metrics movements [FILE] --from YYYY-MM --to YYYY-MM [--timezone Z]`: no database;
- `abowerk metrics rebuild [--tenant ID]`: rebuild the MRR movement ledger from the
  subscription history, one transaction per tenant (every active tenant without --tenant);
- `abowerk metrics reconcile --tenant ID [--from YYYY-MM] [--to YYYY-MM] [--mode live|test|both]
  [--check both|ledger_vs_state|mrr_vs_invoices]`: the reconciliations as JSON lines, one per
  difference, then a summary line; exit status 1 when a difference is unexplained.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from billing.metrics.cli import movements_command
from billing.metrics.months import Month
from saas.kernel import tenancy
from saas.kernel.clock import utcnow


def _session() -> Any:
    from saas.extensions import db

    return db.session


def _tenant_ids(session: Any, tenant_id: str | None) -> list[str]:
    from saas.tenants.models import Tenant

    if tenant_id is not None:
        if session.get(Tenant, tenant_id) is None:
            raise click.ClickException(f"no tenant {tenant_id}")
        return [tenant_id]
    return list(session.scalars(sa.select(Tenant.id).where(Tenant.status == "active")))


@click.command("rebuild")
@click.option("--tenant", "tenant_id", default=None, help="One tenant (default: every one).")
@with_appcontext
def rebuild_command(tenant_id: str | None) -> None:
    """Rebuild the MRR movement ledger from the subscription history."""
    from billing.metrics.services import rebuild_ledger

    session = _session()
    for tid in _tenant_ids(session, tenant_id):
        tenancy.set_tenant(session, tid)
        count = rebuild_ledger(session, tid, now=utcnow())
        session.commit()
        click.echo(json.dumps({"tenant_id": tid, "movements": count}))


def _default_range(session: Any, tenant_id: str, zone: ZoneInfo) -> tuple[Month, Month]:
    from saas.subscriptions.models import SubscriptionHistory

    now = Month.of(utcnow(), zone)
    first_at, last_at = session.execute(
        sa.select(
            sa.func.min(SubscriptionHistory.occurred_at),
            sa.func.max(SubscriptionHistory.occurred_at),
        ).where(SubscriptionHistory.tenant_id == tenant_id)
    ).one()
    if first_at is None:
        return now, now
    from saas.kernel.db import UTCDateTime

    # min/max come back untyped on SQLite: run them through the column type
    convert = UTCDateTime().process_result_value
    first = Month.of(convert(first_at, session.connection().dialect) or utcnow(), zone)
    last = Month.of(convert(last_at, session.connection().dialect) or utcnow(), zone)
    return first, max(last, now)


@click.command("reconcile")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--from", "first_text", default=None, help="First month (default: the first).")
@click.option("--to", "last_text", default=None, help="Last month (default: this month).")
@click.option(
    "--mode", type=click.Choice(["live", "test", "both"]), default="both", show_default=True
)
@click.option(
    "--check",
    type=click.Choice(["both", "ledger_vs_state", "mrr_vs_invoices"]),
    default="both",
    show_default=True,
    help="The ledger against the subscriptions' state, the MRR against invoices, or both.",
)
@with_appcontext
def reconcile_command(
    tenant_id: str, first_text: str | None, last_text: str | None, mode: str, check: str
) -> None:
    """Reconcile the MRR ledger with the subscriptions' state at every month end and with the
    finalized invoices and credit notes of every month."""
    from billing.metrics.queries import reconcile
    from billing.metrics.services import tenant_zone

    session = _session()
    _tenant_ids(session, tenant_id)
    tenancy.set_tenant(session, tenant_id)
    zone = tenant_zone(session, tenant_id)
    first, last = _default_range(session, tenant_id, zone)
    try:
        first = Month.parse(first_text) if first_text else first
        last = Month.parse(last_text) if last_text else last
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    unexplained = 0
    for livemode in {"live": [True], "test": [False], "both": [False, True]}[mode]:
        result = reconcile(session, tenant_id, livemode, first, last, check=check)
        for d in result.differences:
            click.echo(json.dumps(difference_json(d) | {"livemode": livemode}))
        click.echo(
            json.dumps(
                {
                    "summary": True,
                    "livemode": livemode,
                    "from": str(first),
                    "to": str(last),
                    "month_ends": result.month_ends,
                    "customers": result.customers,
                    "differences": len(result.differences),
                    "unexplained": result.unexplained,
                }
            )
        )
        unexplained += result.unexplained
    session.rollback()
    if unexplained:
        raise SystemExit(1)


def difference_json(d: Any) -> dict[str, Any]:
    return {
        "check": d.check.value,
        "month": str(d.month) if d.month is not None else None,
        "customer_id": d.customer_id,
        "currency": d.currency,
        "expected": d.expected,
        "actual": d.actual,
        "difference": d.difference,
        "cause": d.cause.value,
        "explained": d.explained,
        "detail": d.detail,
    }


metrics_cli = click.Group(
    "metrics",
    help="MRR metrics: movements of an event file; rebuild and reconcile the ledger.",
    commands=[movements_command, rebuild_command, reconcile_command],
)
