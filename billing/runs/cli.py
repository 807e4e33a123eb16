"""``abowerk billing run`` and ``abowerk billing status``: billing runs from the shell."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click
from flask.cli import with_appcontext

from billing.runs import services
from billing.runs.models import FAILED, BillingRun
from billing.runs.schemas import BillingRunOut


def _parse_at(value: str | None) -> datetime:
    from saas.kernel.clock import utcnow

    if value is None:
        return utcnow()
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 timestamp: {value}") from exc
    if at.tzinfo is None:
        raise click.BadParameter("give the time zone, e.g. 2026-12-01T00:00:00+00:00")
    return at.astimezone(UTC)


@click.group("billing")
def billing_cli() -> None:
    """Billing runs: invoice what fell due."""


@billing_cli.command("run")
@click.option("--at", "at_text", default=None, help="Bill up to this instant (ISO 8601; now).")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant (default: all).")
@click.option(
    "--batch-size",
    envvar="ABOWERK_BILLING_BATCH_SIZE",
    default=services.DEFAULT_BATCH_SIZE,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Subscriptions per batch (one transaction each).",
)
@click.option(
    "--queue",
    "part_size",
    type=click.IntRange(1, 10_000_000),
    default=None,
    help="Do not bill here: cut each tenant's run into parts of this many subscriptions and "
    "queue them for the workers (`abowerk worker`, any number); follow with `billing status`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_appcontext
def run_cmd(
    at_text: str | None,
    tenant_id: str | None,
    batch_size: int,
    part_size: int | None,
    as_json: bool,
) -> None:
    """Advance the due subscriptions and finalize their invoices, exactly once."""
    from billing.runs.tasks import queue_documents, queue_runs
    from saas.extensions import db
    from saas.kernel.clock import utcnow

    at = _parse_at(at_text)
    tenant_ids = services.active_tenant_ids(db.engine)
    if tenant_id is not None:
        if tenant_id not in tenant_ids:
            raise click.ClickException(f"no active tenant {tenant_id}")
        tenant_ids = [tenant_id]
    if part_size is not None:
        group_id, queued = queue_runs(
            tenant_ids, at=at, trigger="cli", part_size=part_size, batch_size=batch_size
        )
        runs = _find_runs(db.engine, group_id)
        if as_json:
            _summary(group_id, runs, as_json=True)
        else:
            click.echo(f"queued billing run {group_id} for {len(queued)} tenant(s)")
        return
    group_id, created = services.create_runs(
        db.engine, tenant_ids, at=at, trigger="cli", now=utcnow(), batch_size=batch_size
    )
    total = sum(_batches_total(run_id, tenant) for tenant, run_id in created)
    finished: list[BillingRun] = []
    with click.progressbar(
        length=max(total, 1),
        label=f"billing run {group_id}",
        file=sys.stderr,  # stdout carries the summary (--json)
        show_pos=True,
    ) as bar:
        for tenant, run_id in created:
            finished.append(
                services.execute_run(
                    db.engine,
                    tenant,
                    run_id,
                    batch_size=batch_size,
                    clock_now=utcnow,
                    progress=lambda _phase, _result: bar.update(1),
                    documents=queue_documents,
                )
            )
    _summary(group_id, finished, as_json=as_json)
    if any(run.status == FAILED for run in finished):
        raise SystemExit(1)


def _batches_total(run_id: str, tenant_id: str) -> int:
    from saas.extensions import db
    from saas.kernel.tasks import tenant_session

    with tenant_session(db.engine, tenant_id) as session:
        run = session.get(BillingRun, (tenant_id, run_id))
        return run.batches_total if run is not None else 0


_COUNTS = ("subscriptions_advanced", "invoices_finalized", "skipped", "failed", "batches_done")


def _summary(group_id: str, runs: list[BillingRun], *, as_json: bool) -> None:
    if as_json:
        out = {
            "group_id": group_id,
            "runs": BillingRunOut(many=True).dump(runs),
            **{name: sum(getattr(run, name) for run in runs) for name in _COUNTS},
        }
        click.echo(json.dumps(out))
        return
    click.echo(f"billing run {group_id}: {len(runs)} tenant(s)")
    for run in runs:
        click.echo(_line(run))
    totals = {name: sum(getattr(run, name) for run in runs) for name in _COUNTS}
    click.echo(
        f"total: {totals['subscriptions_advanced']} advanced, "
        f"{totals['invoices_finalized']} invoices finalized, {totals['skipped']} skipped, "
        f"{totals['failed']} failed"
    )


def _line(run: BillingRun) -> str:
    seconds = ""
    if run.started_at and run.finished_at:
        seconds = f" in {(run.finished_at - run.started_at).total_seconds():.1f}s"
    error = f" — last error: {run.last_error}" if run.last_error else ""
    return (
        f"  {run.tenant_id} {run.id} {run.status}{seconds}: "
        f"{run.subscriptions_advanced} advanced, {run.invoices_finalized} invoices, "
        f"{run.skipped} skipped, {run.failed} failed, "
        f"batches {run.batches_done}/{run.batches_total}{error}"
    )


@billing_cli.command("status")
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def status_cmd(run_id: str | None, as_json: bool) -> None:
    """Show a run (``brun_…``), a run group (``brg_…``) or, without an id, the latest group."""
    from saas.extensions import db

    runs = _find_runs(db.engine, run_id)
    if not runs:
        raise click.ClickException(f"no billing run {run_id}" if run_id else "no billing run yet")
    _summary(runs[0].group_id, runs, as_json=as_json)


def _find_runs(engine: Any, run_id: str | None) -> list[BillingRun]:
    """Runs are tenant-owned (row-level security): look tenant by tenant."""
    import sqlalchemy as sa

    from saas.kernel.tasks import tenant_session

    found: list[BillingRun] = []
    latest: BillingRun | None = None
    for tenant_id in services.active_tenant_ids(engine):
        with tenant_session(engine, tenant_id) as session:
            stmt = sa.select(BillingRun)
            if run_id is None:
                run = session.scalars(
                    stmt.order_by(BillingRun.created_at.desc(), BillingRun.id.desc())
                ).first()
                if run is not None and (latest is None or run.created_at > latest.created_at):
                    latest = run
                continue
            found.extend(
                session.scalars(
                    stmt.where((BillingRun.id == run_id) | (BillingRun.group_id == run_id))
                )
            )
    if run_id is None and latest is not None:
        return _find_runs(engine, latest.group_id)
    return sorted(found, key=lambda run: run.tenant_id)
