# mypy: disable-error-code="untyped-decorator"
# (huey ships no type hints for its task decorator)
"""Worker tasks of billing runs (shell layer: wires the run to the Huey queue).

* ``billing_tick`` (every 15 minutes, or as ABOWERK_BILLING_SCHEDULE says): one run group
  over the active tenants, billed up to now, fanned out: ``plan_billing(tenant_id, run_id)``
  per tenant cuts the tenant's run into parts by subscription id and queues ``bill_part(…)``
  per part, so that any number of
  ``abowerk worker`` processes on any number of machines share one run. Exactly-once does
  not depend on who runs what: the batches lock their subscriptions and the period key is
  unique. ``abowerk billing run --queue`` starts the same from the shell.
* ``run_billing(tenant_id, run_id)``: a tenant's run in one task, batch after batch.
* ``render_run_documents(tenant_id, invoice_ids)``: the documents of one batch's invoices,
  queued after the batch committed (one task per batch, not per invoice: a run of a million
  invoices must not queue a million tasks while it runs).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime

from huey import crontab

from billing.invoices import rendering
from billing.invoices.models import Invoice
from billing.runs import services
from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.kernel.tasks import tenant_session
from saas.worker import app_context, huey

log = logging.getLogger("abowerk.billing.runs")


@huey.task(retries=3, retry_delay=30)
def render_run_documents(tenant_id: str, invoice_ids: list[str]) -> int:
    """Render and store the PDF and XML of a batch's invoices (idempotent)."""
    rendered = 0
    with app_context():
        for invoice_id in invoice_ids:
            with tenant_session(db.engine, tenant_id) as session:
                invoice = session.get(Invoice, (tenant_id, invoice_id))
                if invoice is None or invoice.snapshot_json is None:
                    continue
                rendered += rendering.render_documents(session, invoice, now=utcnow())
                session.commit()
    return rendered


def queue_documents(tenant_id: str, invoice_ids: list[str]) -> None:
    """The run's documents hook: after a batch committed."""
    try:
        render_run_documents(tenant_id, invoice_ids)
    except Exception:
        # the invoices are committed; a lost render is redone by the first download
        log.exception("could not queue the documents of a batch", extra={"tenant_id": tenant_id})


@huey.task()
def run_billing(tenant_id: str, run_id: str, batch_size: int = services.DEFAULT_BATCH_SIZE) -> str:
    """Run (or resume) one tenant's billing run; returns its final status."""
    with app_context():
        run = services.execute_run(
            db.engine,
            tenant_id,
            run_id,
            batch_size=batch_size,
            clock_now=utcnow,
            documents=queue_documents,
        )
        return run.status


PART_SIZE = 10 * services.DEFAULT_BATCH_SIZE


@huey.task()
def plan_billing(
    tenant_id: str,
    run_id: str,
    part_size: int = PART_SIZE,
    batch_size: int = services.DEFAULT_BATCH_SIZE,
) -> int:
    """Cut a tenant's run into parts and queue one task per part; returns the parts."""
    with app_context():
        parts = services.plan_parts(db.engine, tenant_id, run_id, part_size=part_size)
    for after, upto in parts:
        bill_part(tenant_id, run_id, after, upto, batch_size)
    return len(parts)


@huey.task(retries=2, retry_delay=10)
def bill_part(
    tenant_id: str, run_id: str, after: str | None, upto: str | None, batch_size: int
) -> str:
    """One part of a run: its subscriptions advanced and invoiced; returns the run status."""
    with app_context():
        return services.execute_part(
            db.engine,
            tenant_id,
            run_id,
            after=after,
            upto=upto,
            batch_size=batch_size,
            clock_now=utcnow,
            documents=queue_documents,
        )


def queue_runs(
    tenant_ids: list[str], *, at: datetime, trigger: str, part_size: int, batch_size: int
) -> tuple[str, list[tuple[str, str]]]:
    """Record a run group and queue its planning, one task per tenant."""
    with app_context():
        group_id, runs = services.create_runs(
            db.engine, tenant_ids, at=at, trigger=trigger, now=utcnow(), batch_size=batch_size
        )
    for tenant_id, run_id in runs:
        plan_billing(tenant_id, run_id, part_size, batch_size)
    return group_id, runs


@functools.lru_cache(maxsize=4)
def _schedule(spec: str) -> Callable[[datetime], bool]:
    return crontab(*spec.split())  # type: ignore[no-any-return]


def billing_due(at: datetime) -> bool:
    """Whether the scheduler starts a run at ``at`` (ABOWERK_BILLING_SCHEDULE, default every
    15 minutes; read when asked, so the setting is the worker app's, not the import's)."""
    with app_context() as app:
        spec: str = app.config["ABOWERK_SETTINGS"].billing_schedule
    return _schedule(spec)(at)


@huey.periodic_task(billing_due)
def billing_tick() -> None:
    with app_context():
        # runs whose worker died mid-part say so; this run bills what they left
        services.abandon_stale_runs(db.engine, now=utcnow())
        tenant_ids = services.active_tenant_ids(db.engine)
    queue_runs(
        tenant_ids,
        at=utcnow(),
        trigger="worker",
        part_size=PART_SIZE,
        batch_size=services.DEFAULT_BATCH_SIZE,
    )
