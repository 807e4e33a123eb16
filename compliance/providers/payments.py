"""Payments (`billing.payments`): the export category `payments`, the eraser, and the
erasure's payment-provider hook wired to the tenant's Stripe account.

Payments and refunds are bookkeeping records (§ 147 AO): their amounts, dates, invoice links
and provider references stay as long as the invoice they settle (they are deleted with it,
by the foreign key, when the retention sweeper deletes the invoice). What is personal
in them is erased: the free-text note of a bank transfer (replaced with a random token) and
the card summary (brand, last four) of the customer's Stripe set-up. The Stripe customer
itself is deleted at Stripe by the payment customer deleter (registered as "stripe"), which
runs after the erasers; once Stripe confirms, the set-up row is deleted too, otherwise it is
kept so that `abowerk gdpr reapply-erasures` can try again.

`stripe_customer_deleter` takes `gateway_for(session, subject)`, which returns the tenant's
gateway (`billing.payments.gateway.StripeGateway` fits) or None when the tenant has no Stripe
account, and `customer_ids(session, subject)`, the person's Stripe customer ids. Each is
deleted (`DELETE /v1/customers/{id}`; Stripe then also detaches their payment methods); a
customer Stripe no longer knows counts as deleted. An unreachable Stripe raises the
gateway's `unavailable` error, which the erasure records as `failed` and
`abowerk gdpr reapply-erasures` retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    PaymentCustomerDeleter,
    PaymentCustomerDeletion,
    Provider,
    Registry,
    Subject,
    columns,
)
from compliance.tokens import erased_text

PROVIDER = "stripe"
NAME = "payments"


class CustomerDeletingGateway(Protocol):
    def delete_customer(self, customer_id: str) -> bool: ...


def stripe_customer_deleter(
    *,
    gateway_for: Callable[[Session, Subject], CustomerDeletingGateway | None],
    customer_ids: Callable[[Session, Subject], list[str]],
) -> PaymentCustomerDeleter:
    def delete(session: Session, subject: Subject) -> list[PaymentCustomerDeletion]:
        ids = customer_ids(session, subject)
        gateway = gateway_for(session, subject) if ids else None
        if gateway is None:
            return [PaymentCustomerDeletion(PROVIDER, "no_customer")]
        results = []
        for stripe_id in ids:
            deleted = gateway.delete_customer(stripe_id)
            results.append(
                PaymentCustomerDeletion(
                    PROVIDER,
                    "deleted" if deleted else "failed",
                    reference=stripe_id,
                    error=None if deleted else "not_deleted",
                )
            )
        return results

    return delete


# --- the payments module's provider ---------------------------------------------------------


def _method(provider: str, brand: str | None, last4: str | None) -> str | None:
    if provider == "manual":
        return "bank_transfer"
    if last4:
        return f"card {brand or ''} •••• {last4}".replace("  ", " ")
    return "card"


def export(ctx: ExportContext) -> ExportPart:
    from billing.payments.models import Payment, PaymentCustomer

    session = ctx.session
    card = session.scalars(
        sa.select(PaymentCustomer).where(PaymentCustomer.customer_id == ctx.subject.customer_id)
    ).first()
    rows = session.scalars(
        sa.select(Payment)
        .where(Payment.customer_id == ctx.subject.customer_id)
        .order_by(Payment.id)
    ).all()
    return ExportPart(
        records={
            "payments": [
                {
                    "payment_id": p.id,
                    "provider": p.provider,
                    "kind": p.kind,
                    "status": p.status,
                    "amount": p.amount_minor,
                    "currency": p.currency,
                    "method": _method(
                        p.provider,
                        card.card_brand if card else None,
                        card.card_last4 if card else None,
                    ),
                    "invoice_id": p.invoice_id,
                    "credit_note_id": p.credit_note_id,
                    "reference": p.provider_ref,
                    "note": p.note,
                    "received_at": p.received_at,
                    "created_at": p.created_at,
                }
                for p in rows
            ]
        }
    )


def erase(ctx: ErasureContext) -> ErasureReport:
    from billing.payments.models import Payment, PaymentCustomer

    report = ErasureReport()
    session = ctx.session
    for payment in session.scalars(
        sa.select(Payment).where(
            Payment.customer_id == ctx.subject.customer_id, Payment.note.is_not(None)
        )
    ):
        if not payment.note.startswith("erased-"):  # type: ignore[union-attr]
            payment.note = erased_text()
            report.count("payment_note_tokenized")
    for record in session.scalars(
        sa.select(PaymentCustomer).where(PaymentCustomer.customer_id == ctx.subject.customer_id)
    ):
        if record.card_brand or record.card_last4:
            record.card_brand = None
            record.card_last4 = None
            report.count("card_summary_erased")
    session.flush()
    return report


PAYMENTS_PROVIDER = Provider(
    name=NAME,
    covers=columns("payments", ["note"])
    | columns("payment_customers", ["card_brand", "card_last4"]),
    purpose="collecting and booking payments for invoices (Art. 6(1)(b) and (c) GDPR)",
    retention=(
        "payment and refund records as long as the invoice they settle (§ 147 AO: booking "
        "records), deleted with it; personal free text and card details are erased on "
        "request, and the Stripe customer is deleted at Stripe"
    ),
    export=export,
    erase=erase,
    categories=("payments",),
    order=30,
)


def _gateway_for(session: Session, subject: Subject) -> CustomerDeletingGateway | None:
    from billing.payments import runtime
    from billing.payments.services import payment_settings

    settings = payment_settings(session, livemode=subject.livemode)
    if settings is None or not settings.stripe_secret_key_encrypted:
        return None
    return runtime.stripe_gateway(settings)


def _customer_ids(session: Session, subject: Subject) -> list[str]:
    from billing.payments.models import PaymentCustomer

    return list(
        session.scalars(
            sa.select(PaymentCustomer.external_customer_id).where(
                PaymentCustomer.customer_id == subject.customer_id,
                PaymentCustomer.provider == PROVIDER,
            )
        )
    )


def _forget_deleted(
    session: Session, subject: Subject, results: list[PaymentCustomerDeletion]
) -> None:
    from billing.payments.models import PaymentCustomer

    gone = {r.reference for r in results if r.status == "deleted" and r.reference}
    if gone:
        session.execute(
            sa.delete(PaymentCustomer).where(
                PaymentCustomer.customer_id == subject.customer_id,
                PaymentCustomer.external_customer_id.in_(gone),
            )
        )


def tenant_stripe_deleter() -> PaymentCustomerDeleter:
    inner = stripe_customer_deleter(gateway_for=_gateway_for, customer_ids=_customer_ids)

    def delete(session: Session, subject: Subject) -> list[PaymentCustomerDeletion]:
        results = inner(session, subject)
        _forget_deleted(session, subject, results)
        return results

    return delete


def register(target: Registry) -> None:
    target.register(PAYMENTS_PROVIDER)
    target.register_payment_customer_deleter(PROVIDER, tenant_stripe_deleter())
