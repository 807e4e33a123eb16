"""Entry points the payment code calls when a collection attempt on an invoice ends.

They run inside the caller's transaction and only flush: the payment row, the dunning case,
the subscription transition and the reminder e-mail commit together or not at all.

Contract for callers:
- ``at`` is the customer's time: for a customer on a test clock the clock's frozen time
  (``saas.testclocks.queries.clock_now``), so that the retry schedule follows the clock;
- report success after the invoice is marked paid (the case closes as ``recovered``);
- a dunning retry calls the collector inside a savepoint while its retry row is ``running``:
  the outcome reported here during that call is the retry's outcome.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from billing.dunning import services
from billing.invoices.models import Invoice


def on_payment_failed(
    session: Session,
    invoice: Invoice,
    *,
    at: datetime,
    code: str | None,
    message: str | None,
) -> None:
    """A collection attempt on ``invoice`` failed at ``at``: open (or advance) its dunning case."""
    services.record_payment_failure(session, invoice, at=at, code=code, message=message)


def on_payment_succeeded(session: Session, invoice: Invoice, *, at: datetime) -> None:
    """``invoice`` was paid at ``at``: close its dunning case and reactivate the subscription."""
    services.record_payment_success(session, invoice, at=at)
