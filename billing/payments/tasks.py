# mypy: disable-error-code="untyped-decorator"
# (huey ships no type hints for its task decorator)
"""Worker tasks of payments (shell layer: wires the domain to the Huey queue).

``sweep_payments(tenant_id)``, every minute for every active tenant (``payments_tick``):

1. use customers' credit balances for their open invoices;
2. refund, through Stripe, credit notes of invoices Stripe collected;
3. collect open invoices of customers with a Stripe payment method and no attempt yet
   (the billing run finalizes invoices and knows nothing of payments; this picks them up).

Each refund and each charge commits on its own, right after Stripe answered, so a later
failure in the same sweep never rolls back a booked payment. Stripe down: that item is rolled
back and tried again on the next sweep under the same idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from huey import crontab
from sqlalchemy.orm import Session

from billing.payments import collection, services
from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.kernel.errors import DomainError
from saas.kernel.tasks import tenant_session
from saas.tenants.models import Tenant
from saas.worker import app_context, huey

log = logging.getLogger("abowerk.payments")


@dataclass
class SweepSummary:
    balance_applied: int = 0
    refunds: int = 0
    collections: dict[str, int] = field(default_factory=dict)
    errors: int = 0


def _each(
    session: Session, summary: SweepSummary, items: list[str], work: Callable[[str], None]
) -> None:
    for item in items:
        try:
            work(item)
            session.commit()
        except (DomainError, sa.exc.SQLAlchemyError):
            session.rollback()
            summary.errors += 1
            log.warning("payment sweep item failed", exc_info=True, extra={"item": item})


def sweep_tenant(engine: sa.Engine, tenant_id: str, *, now: datetime) -> SweepSummary:
    summary = SweepSummary()
    with tenant_session(engine, tenant_id) as session:
        for customer_id, currency, livemode in collection.customers_with_credit(session):
            summary.balance_applied += services.apply_customer_balance(
                session, customer_id, currency, now=now, livemode=livemode
            )
        session.commit()

        def refund(note_id: str) -> None:
            if collection.refund_credit_note(session, note_id, now=now) is not None:
                summary.refunds += 1

        _each(session, summary, collection.credit_notes_to_refund(session), refund)

        def collect(invoice_id: str) -> None:
            result = collection.collect_invoice(session, invoice_id, now=now)
            key = result.status if result.status != "skipped" else f"skipped:{result.reason}"
            summary.collections[key] = summary.collections.get(key, 0) + 1

        _each(session, summary, collection.invoices_to_collect(session), collect)
    return summary


@huey.task()
def sweep_payments(tenant_id: str) -> int:
    with app_context():
        summary = sweep_tenant(db.engine, tenant_id, now=utcnow())
    return summary.refunds + sum(summary.collections.values())


@huey.periodic_task(crontab(minute="*"))
def payments_tick() -> None:
    with app_context():
        with db.engine.connect() as conn:
            tenant_ids = list(
                conn.execute(sa.select(Tenant.id).where(Tenant.status == "active")).scalars()
            )
        for tenant_id in tenant_ids:
            sweep_payments(tenant_id)
