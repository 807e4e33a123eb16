"""Collecting invoices through Stripe, and refunding credit notes of Stripe-paid invoices.

* :func:`collect_invoice`: the first attempt on a finalized invoice of a customer with a
  Stripe payment method: an off-session PaymentIntent for what the invoice still wants
  (after the credit balance was used), idempotency key ``<invoice id>-attempt-<n>``. The
  payments sweep calls it for every open invoice that has no Stripe attempt yet, so the
  billing run needs to know nothing about payments.
* :func:`attempt_collection`: the same for a later attempt (dunning retries call it); it
  refuses while an attempt is pending or has succeeded.
* :func:`refund_credit_note`: a credit note for an invoice that Stripe collected refunds the
  credit note's gross (at most what was collected and not refunded yet) through Stripe,
  idempotency key ``<credit note id>-refund``, recorded as a ``refund`` payment.

localstripe ignores Stripe's idempotency keys, so the keys double as a unique column of our
own: a second call for the same invoice and attempt finds the row and never charges twice.
The Stripe call happens inside the caller's transaction. If that transaction is lost after
Stripe charged, the ``payment_intent.succeeded`` webhook (metadata: invoice id and attempt)
records the payment; if Stripe was unreachable the transaction rolls back and the next try
repeats the same attempt under the same key, which Stripe answers with the first result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.dunning import hooks as dunning
from billing.invoices.models import CREDIT_NOTE, INVOICE_KINDS, OPEN, Invoice
from billing.payments import rules, runtime
from billing.payments.models import (
    FAILED,
    PAYMENT,
    PENDING,
    READY,
    REFUND,
    STRIPE,
    SUCCEEDED,
    Payment,
    PaymentCustomer,
)
from billing.payments.services import (
    PAYABLE,
    amount_remaining,
    apply_customer_balance,
    emit_payment_event,
    lock_invoice,
    payment_customer,
    payment_settings,
    settle_payment,
)
from saas.customers.services import get_customer
from saas.kernel.ids import new_id
from saas.testclocks.queries import clock_now


@dataclass(frozen=True)
class CollectionResult:
    """``succeeded`` / ``failed`` / ``pending`` (Stripe answers later, by webhook) or
    ``skipped`` with a ``reason``: ``not_payable``, ``nothing_due``, ``in_progress``,
    ``already_attempted``, ``stripe_not_configured``, ``no_payment_method``."""

    status: str
    payment_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    reason: str | None = None


def _attempts(session: Session, invoice_id: str) -> list[Payment]:
    return list(
        session.scalars(
            sa.select(Payment)
            .where(
                Payment.invoice_id == invoice_id,
                Payment.kind == PAYMENT,
                Payment.provider == STRIPE,
            )
            .order_by(Payment.attempt)
        )
    )


def collect_invoice(session: Session, invoice_id: str, *, now: datetime) -> CollectionResult:
    """The first Stripe attempt on an invoice; later ones are dunning's (attempt_collection)."""
    if _attempts(session, invoice_id):
        return CollectionResult("skipped", reason="already_attempted")
    return _collect(session, invoice_id, now=now, retry=False)


_IMPOSSIBLE = {
    "stripe_not_configured": "the seller collects by bank transfer, not by card",
    "no_payment_method": "no payment method is set up for automatic collection",
}


def _skip_reason(
    session: Session, invoice: Invoice, attempts: list[Payment], now: datetime
) -> str | None:
    """Why no charge is due now, or None; uses the credit balance first."""
    if invoice.status not in PAYABLE:
        return "not_payable"
    if any(p.status in (PENDING, SUCCEEDED) for p in attempts):
        return "in_progress"
    apply_customer_balance(
        session, invoice.customer_id, invoice.currency, now=now, livemode=invoice.livemode
    )
    if invoice.status not in PAYABLE or amount_remaining(session, invoice) <= 0:
        return "nothing_due"  # the credit balance paid it
    settings = payment_settings(session, livemode=invoice.livemode)
    if settings is None or settings.provider != STRIPE or not settings.stripe_secret_key_encrypted:
        return "stripe_not_configured"
    record = payment_customer(session, invoice.customer_id)
    if record is None or record.status != READY or not record.default_payment_method_id:
        return "no_payment_method"
    return None


def attempt_collection(session: Session, invoice_id: str, *, now: datetime) -> CollectionResult:
    """Charge what the invoice still wants to the customer's default payment method (a
    dunning retry). When no charge is possible at all (the tenant has no Stripe, the customer
    no payment method) that is reported to dunning as a failed attempt, so its schedule and
    reminders go on."""
    return _collect(session, invoice_id, now=now, retry=True)


def _collect(session: Session, invoice_id: str, *, now: datetime, retry: bool) -> CollectionResult:
    invoice = lock_invoice(session, invoice_id)
    attempts = _attempts(session, invoice.id)
    reason = _skip_reason(session, invoice, attempts, now)
    if reason is not None:
        if retry and reason in _IMPOSSIBLE:
            at = clock_now(session, get_customer(session, invoice.customer_id).test_clock_id, now)
            dunning.on_payment_failed(
                session, invoice, at=at, code=reason, message=_IMPOSSIBLE[reason]
            )
            return CollectionResult("failed", failure_code=reason, reason=reason)
        return CollectionResult("skipped", reason=reason)
    remaining = amount_remaining(session, invoice)
    settings = payment_settings(session, livemode=invoice.livemode)
    record = payment_customer(session, invoice.customer_id)
    if record is None or record.default_payment_method_id is None:  # checked above
        return CollectionResult("skipped", reason="no_payment_method")
    attempt = max((p.attempt for p in attempts), default=0) + 1
    payment = Payment(
        id=new_id("pay"),
        livemode=invoice.livemode,
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
        provider=STRIPE,
        kind=PAYMENT,
        status=PENDING,
        amount_minor=remaining,
        currency=invoice.currency,
        idempotency_key=rules.attempt_key(invoice.id, attempt),
        attempt=attempt,
        needs_refund=False,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()  # the unique key claims the attempt before Stripe is called
    result = runtime.stripe_gateway(settings).charge(
        customer_id=record.external_customer_id,
        payment_method_id=record.default_payment_method_id,
        amount_minor=remaining,
        currency=invoice.currency,
        idempotency_key=payment.idempotency_key or "",
        metadata={
            "abowerk_invoice_id": invoice.id,
            "abowerk_invoice_number": invoice.number or "",
            "abowerk_payment_id": payment.id,
            "abowerk_attempt": str(attempt),
        },
    )
    if result.payment_intent_id:
        payment.provider_ref = result.payment_intent_id
    at = clock_now(session, get_customer(session, invoice.customer_id).test_clock_id, now)
    if result.status == "succeeded":
        succeed_payment(session, invoice, payment, at=at, now=now)
        return CollectionResult("succeeded", payment.id)
    if result.status == "failed":
        fail_payment(
            session,
            invoice,
            payment,
            code=result.failure_code,
            message=result.failure_message,
            at=at,
            now=now,
        )
        return CollectionResult("failed", payment.id, result.failure_code, result.failure_message)
    session.flush()
    return CollectionResult("pending", payment.id)


def succeed_payment(
    session: Session, invoice: Invoice, payment: Payment, *, at: datetime, now: datetime
) -> None:
    payment.status = SUCCEEDED
    payment.received_at = at
    payment.failure_code = None
    payment.failure_message = None
    payment.updated_at = now
    session.flush()
    settle_payment(session, invoice, payment, now=now)
    emit_payment_event(session, "payment.succeeded", payment, now)


def fail_payment(
    session: Session,
    invoice: Invoice,
    payment: Payment,
    *,
    code: str | None,
    message: str | None,
    at: datetime,
    now: datetime,
) -> None:
    payment.status = FAILED
    payment.failure_code = (code or "payment_failed")[:64]
    payment.failure_message = (message or "")[:500] or None
    payment.updated_at = now
    session.flush()
    emit_payment_event(session, "payment.failed", payment, now)
    if invoice.status in PAYABLE:
        dunning.on_payment_failed(
            session, invoice, at=at, code=payment.failure_code, message=payment.failure_message
        )


# --- refunds ------------------------------------------------------------------------------


def refund_credit_note(session: Session, credit_note_id: str, *, now: datetime) -> Payment | None:
    """Refund a credit note's gross through Stripe when its invoice was collected by Stripe.
    Returns the refund (new or recorded before), or None when nothing is to be refunded."""
    key = rules.refund_key(credit_note_id)
    existing = session.scalars(sa.select(Payment).where(Payment.idempotency_key == key)).first()
    if existing is not None:
        return existing
    note = session.scalars(
        sa.select(Invoice).where(Invoice.id == credit_note_id, Invoice.kind == CREDIT_NOTE)
    ).first()
    if note is None or note.corrects_invoice_id is None:
        return None
    charged = [
        p
        for p in _attempts(session, note.corrects_invoice_id)
        if p.status == SUCCEEDED and not p.needs_refund and p.provider_ref
    ]
    if not charged:
        return None
    source = charged[-1]
    refunded = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_minor), 0)).where(
            Payment.refunded_payment_id == source.id, Payment.status.in_((SUCCEEDED, PENDING))
        )
    )
    amount = min(note.gross_minor or 0, source.amount_minor - int(refunded or 0))
    if amount <= 0:
        return None
    settings = payment_settings(session, livemode=note.livemode)
    refund = Payment(
        id=new_id("pay"),
        livemode=note.livemode,
        customer_id=note.customer_id,
        invoice_id=note.corrects_invoice_id,
        provider=STRIPE,
        kind=REFUND,
        status=PENDING,
        amount_minor=amount,
        currency=note.currency,
        idempotency_key=key,
        credit_note_id=note.id,
        refunded_payment_id=source.id,
        attempt=1,
        needs_refund=False,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    session.flush()
    answer = runtime.stripe_gateway(settings).refund(
        payment_intent_id=source.provider_ref or "", amount_minor=amount, idempotency_key=key
    )
    at = clock_now(session, get_customer(session, note.customer_id).test_clock_id, now)
    refund.provider_ref = answer.refund_id
    if answer.status == SUCCEEDED:
        refund.status = SUCCEEDED
        refund.received_at = at
    elif answer.status in (FAILED, "canceled"):
        refund.status = FAILED
    refund.updated_at = now
    session.flush()
    if refund.status == SUCCEEDED:
        emit_payment_event(session, "payment.refunded", refund, now)
    return refund


# --- the sweep ----------------------------------------------------------------------------


def credit_notes_to_refund(session: Session) -> list[str]:
    """Credit notes of invoices with a succeeded Stripe payment and no refund yet."""
    stripe_paid = (
        sa.select(Payment.invoice_id)
        .where(
            Payment.provider == STRIPE,
            Payment.kind == PAYMENT,
            Payment.status == SUCCEEDED,
            Payment.needs_refund.is_(False),
        )
        .scalar_subquery()
    )
    refunded = (
        sa.select(Payment.credit_note_id).where(Payment.credit_note_id.is_not(None))
    ).scalar_subquery()
    return list(
        session.scalars(
            sa.select(Invoice.id)
            .where(
                Invoice.kind == CREDIT_NOTE,
                Invoice.corrects_invoice_id.in_(stripe_paid),
                Invoice.id.not_in(refunded),
            )
            .order_by(Invoice.id)
        )
    )


def invoices_to_collect(session: Session) -> list[str]:
    """Open invoices of customers with a ready Stripe payment method and no Stripe attempt."""
    attempted = (
        sa.select(Payment.invoice_id)
        .where(Payment.provider == STRIPE, Payment.kind == PAYMENT)
        .scalar_subquery()
    )
    ready = (
        sa.select(PaymentCustomer.customer_id)
        .where(PaymentCustomer.status == READY, PaymentCustomer.provider == STRIPE)
        .scalar_subquery()
    )
    return list(
        session.scalars(
            sa.select(Invoice.id)
            .where(
                Invoice.kind.in_(INVOICE_KINDS),
                Invoice.status == OPEN,
                Invoice.customer_id.in_(ready),
                Invoice.id.not_in(attempted),
            )
            .order_by(Invoice.id)
        )
    )


def customers_with_credit(session: Session) -> list[tuple[str, str, bool]]:
    from billing.payments.models import CustomerBalanceTransaction as Cbt

    rows = session.execute(
        sa.select(Cbt.customer_id, Cbt.currency, Cbt.livemode)
        .group_by(Cbt.customer_id, Cbt.currency, Cbt.livemode)
        .having(sa.func.sum(Cbt.amount_minor) > 0)
    ).all()
    return [(str(c), str(cur), bool(mode)) for c, cur, mode in rows]
