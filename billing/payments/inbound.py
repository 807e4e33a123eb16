"""Inbound Stripe webhooks, one address per tenant (``POST /stripe/webhooks/<tenant id>``).

The request carries no API key: it is authenticated by Stripe's signature over the raw body
(``Stripe-Signature``, HMAC-SHA256 with the tenant's webhook signing secret), and a signature
older than five minutes is refused as a replay. The tenant may have a test and a live
secret; the one that verifies tells the mode.

Each event id is recorded once (``stripe_events``, unique per tenant): a replay is answered
200 and changes nothing. Handled types:

* ``payment_intent.succeeded``: the payment succeeds (found by PaymentIntent id, or created
  from the metadata our charges carry when our own record of the attempt was lost); the
  invoice is paid, any excess goes to the customer's balance. A payment for a void invoice is
  recorded with ``needs_refund`` and the invoice stays void;
* ``payment_intent.payment_failed``: the attempt fails and dunning hears of it;
* ``charge.refunded``: refunds made in Stripe's dashboard are recorded (ours are known by
  their id already);
* ``setup_intent.succeeded``: the confirmed payment method becomes the customer's default.

Other types are acknowledged and ignored (``outcome = ignored``), as Stripe expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.invoices.models import INVOICE_KINDS, Invoice
from billing.payments import rules, runtime
from billing.payments.collection import fail_payment, succeed_payment
from billing.payments.errors import InvalidStripeSignatureError, StripeTenantUnknownError
from billing.payments.gateway import WEBHOOK_TOLERANCE_SECONDS, verify_stripe_event
from billing.payments.models import (
    IGNORED,
    PAYMENT,
    PENDING,
    PROCESSED,
    REFUND,
    STRIPE,
    SUCCEEDED,
    Payment,
    PaymentCustomer,
    PaymentSettings,
    StripeEvent,
)
from billing.payments.services import emit_payment_event, use_payment_method
from saas.customers.services import get_customer
from saas.kernel import tenancy
from saas.kernel.ids import new_id
from saas.testclocks.queries import clock_now


@dataclass(frozen=True)
class Received:
    event_id: str
    type: str
    outcome: str
    replayed: bool


def _verify(session: Session, payload: bytes, signature: str | None) -> tuple[dict[str, Any], bool]:
    candidates = session.scalars(
        sa.select(PaymentSettings).where(
            PaymentSettings.stripe_webhook_secret_encrypted.is_not(None)
        )
    ).all()
    if not candidates:
        raise StripeTenantUnknownError("no Stripe webhook secret is configured for this tenant")
    last: InvalidStripeSignatureError | None = None
    for settings in candidates:
        secret = runtime.box().decrypt(settings.stripe_webhook_secret_encrypted or "")
        try:
            event = verify_stripe_event(
                payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except InvalidStripeSignatureError as exc:
            last = exc
            continue
        return event, settings.livemode
    raise last or InvalidStripeSignatureError("signature does not verify")


def receive_stripe_event(
    session: Session, tenant_id: str, payload: bytes, signature: str | None, *, now: datetime
) -> Received:
    """Verify, de-duplicate and apply one Stripe event. The session is scoped to the tenant
    (no mode yet: the verifying secret decides it)."""
    tenancy.set_tenant(session, tenant_id, livemode=None)
    event, livemode = _verify(session, payload, signature)
    tenancy.set_tenant(session, tenant_id, livemode=livemode)
    event_id = str(event.get("id") or "")
    type_ = str(event.get("type") or "")
    if not event_id:
        raise InvalidStripeSignatureError("the event has no id")
    seen = session.scalars(sa.select(StripeEvent).where(StripeEvent.event_id == event_id)).first()
    if seen is not None:
        return Received(event_id, seen.type, seen.outcome, replayed=True)
    obj = (event.get("data") or {}).get("object") or {}
    handler = _HANDLERS.get(type_)
    handled = handler(session, obj, now) if handler is not None else False
    session.add(
        StripeEvent(
            id=new_id("sev"),
            livemode=livemode,
            event_id=event_id[:255],
            type=type_[:100],
            object_id=str(obj.get("id"))[:255] if obj.get("id") else None,
            outcome=PROCESSED if handled else IGNORED,
            received_at=now,
        )
    )
    session.flush()  # the unique event id: a concurrent delivery of the same event conflicts
    return Received(event_id, type_, PROCESSED if handled else IGNORED, replayed=False)


# --- handlers -----------------------------------------------------------------------------


def _invoice(session: Session, invoice_id: str | None) -> Invoice | None:
    if not invoice_id:
        return None
    return session.scalars(
        sa.select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.kind.in_(INVOICE_KINDS))
        .with_for_update()
    ).first()


def _payment_for_intent(session: Session, intent: dict[str, Any], now: datetime) -> Payment | None:
    """Our record of a PaymentIntent: by its id, else by the attempt its metadata names
    (a new pending record when ours was lost with a rolled-back transaction)."""
    intent_id = str(intent.get("id") or "")
    payment = session.scalars(sa.select(Payment).where(Payment.provider_ref == intent_id)).first()
    if payment is not None:
        return payment
    metadata = intent.get("metadata") or {}
    invoice = _invoice(session, metadata.get("abowerk_invoice_id"))
    if invoice is None:
        return None  # not one of ours (another integration on the same Stripe account)
    attempt = int(metadata.get("abowerk_attempt") or 1)
    key = rules.attempt_key(invoice.id, attempt)
    payment = session.scalars(sa.select(Payment).where(Payment.idempotency_key == key)).first()
    if payment is None:
        payment = Payment(
            id=new_id("pay"),
            livemode=invoice.livemode,
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
            provider=STRIPE,
            kind=PAYMENT,
            status=PENDING,
            amount_minor=int(intent.get("amount_received") or intent.get("amount") or 0),
            currency=str(intent.get("currency") or invoice.currency).upper(),
            idempotency_key=key,
            attempt=attempt,
            needs_refund=False,
            created_at=now,
            updated_at=now,
        )
        session.add(payment)
    payment.provider_ref = intent_id
    session.flush()
    return payment


def _at(session: Session, payment: Payment, now: datetime) -> datetime:
    return clock_now(session, get_customer(session, payment.customer_id).test_clock_id, now)


def _intent_succeeded(session: Session, intent: dict[str, Any], now: datetime) -> bool:
    payment = _payment_for_intent(session, intent, now)
    if payment is None:
        return False
    if payment.status == SUCCEEDED:
        return True  # we knew already (the charge's own answer): nothing to book twice
    invoice = _invoice(session, payment.invoice_id)
    if invoice is None:
        return False
    succeed_payment(session, invoice, payment, at=_at(session, payment, now), now=now)
    return True


def _intent_failed(session: Session, intent: dict[str, Any], now: datetime) -> bool:
    payment = _payment_for_intent(session, intent, now)
    if payment is None:
        return False
    if payment.status != PENDING:
        return True  # already failed (or succeeded: a late failure of an older try)
    invoice = _invoice(session, payment.invoice_id)
    if invoice is None:
        return False
    error = intent.get("last_payment_error") or {}
    fail_payment(
        session,
        invoice,
        payment,
        code=error.get("decline_code") or error.get("code"),
        message=error.get("message"),
        at=_at(session, payment, now),
        now=now,
    )
    return True


def _charge_refunded(session: Session, charge: dict[str, Any], now: datetime) -> bool:
    intent_id = charge.get("payment_intent")
    source = session.scalars(
        sa.select(Payment).where(Payment.provider_ref == intent_id, Payment.kind == PAYMENT)
    ).first()
    if source is None:
        return False
    refunds = ((charge.get("refunds") or {}).get("data")) or []
    known = set(
        session.scalars(
            sa.select(Payment.provider_ref).where(Payment.refunded_payment_id == source.id)
        )
    )
    if not refunds:  # an account that does not expand refunds: book the difference once
        total = int(charge.get("amount_refunded") or 0)
        booked = sum(
            p.amount_minor
            for p in session.scalars(
                sa.select(Payment).where(
                    Payment.refunded_payment_id == source.id, Payment.status == SUCCEEDED
                )
            )
        )
        if total > booked:
            refunds = [
                {
                    "id": f"{charge.get('id')}-refunded-{total}",
                    "amount": total - booked,
                    "status": SUCCEEDED,
                }
            ]
    for item in refunds:
        if item.get("id") in known or item.get("status") not in (SUCCEEDED, PENDING):
            continue
        refund = Payment(
            id=new_id("pay"),
            livemode=source.livemode,
            customer_id=source.customer_id,
            invoice_id=source.invoice_id,
            provider=STRIPE,
            kind=REFUND,
            status=str(item.get("status")),
            amount_minor=int(item.get("amount") or 0),
            currency=source.currency,
            provider_ref=str(item["id"]),
            refunded_payment_id=source.id,
            received_at=_at(session, source, now) if item.get("status") == SUCCEEDED else None,
            attempt=1,
            # returning money that settled nothing (it reached a void invoice) settles nothing
            needs_refund=source.needs_refund,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        session.flush()
        emit_payment_event(session, "payment.refunded", refund, now)
    return True


def _setup_succeeded(session: Session, intent: dict[str, Any], now: datetime) -> bool:
    method = intent.get("payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    record = session.scalars(
        sa.select(PaymentCustomer).where(
            sa.or_(
                PaymentCustomer.setup_intent_id == intent.get("id"),
                PaymentCustomer.external_customer_id == intent.get("customer"),
            )
        )
    ).first()
    if record is None or not method:
        return False
    use_payment_method(session, record, str(method), now=now)
    return True


_HANDLERS = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
    "setup_intent.succeeded": _setup_succeeded,
}
