"""Payment use cases: recording money against invoices, the customer credit balance, the
tenant's payment settings and the customer's payment set-up.

Rules (docs/payments.md):

* **What an invoice still wants** is its gross, less what credit notes took off it, less
  what settled it: succeeded payments − refunds − the balance transactions linked to it
  (an overpayment's excess moved out to the balance, credit moved in from it). Payments that
  reached a void invoice (``needs_refund``) settle nothing.
* **A payment** (`manual` bank transfer or `stripe`) that brings the remainder to zero or
  below marks the invoice paid (``billing.invoices.services.mark_paid``); anything beyond the
  remainder goes to the customer's credit balance. A smaller one leaves the invoice open with
  the rest remaining. A payment for an invoice that is paid already goes to the balance whole.
* **The credit balance** is used for the customer's open invoices of the same currency,
  oldest first: at once when credit arises, and by the payments sweep (so new invoices from a
  billing run are settled from credit before Stripe is asked to charge).
* **A bank reference** (``provider_ref``) is unique per tenant and mode: recording the same
  transfer again returns the first record (absorbed); the same reference with other facts is
  a conflict.
* Drafts and void invoices take no money (409 ``invoice_not_payable``); the currency must be
  the invoice's (422 ``payment_currency_mismatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.dunning import hooks as dunning
from billing.invoices.errors import InvoiceNotFoundError
from billing.invoices.models import DRAFT, INVOICE_KINDS, OPEN, UNCOLLECTIBLE, VOID, Invoice
from billing.invoices.services import mark_paid
from billing.payments import rules, runtime
from billing.payments.errors import (
    InvoiceNotPayableError,
    PaymentCurrencyMismatchError,
    PaymentMethodDeclinedError,
    PaymentNotFoundError,
    PaymentReferenceConflictError,
    SetupIntentNotFoundError,
    StripeKeyInvalidError,
    StripeNotConfiguredError,
)
from billing.payments.models import (
    APPLIED,
    MANUAL,
    OVERPAYMENT,
    PAYMENT,
    PENDING,
    READY,
    REFUND,
    SETUP_PENDING,
    STRIPE,
    SUCCEEDED,
    CustomerBalanceTransaction,
    Payment,
    PaymentCustomer,
    PaymentSettings,
)
from saas.customers.services import get_customer
from saas.events.services import emit_event
from saas.kernel.errors import ValidationFailedError
from saas.kernel.ids import new_id
from saas.testclocks.queries import clock_now

PAYABLE = (OPEN, UNCOLLECTIBLE)

# --- reads --------------------------------------------------------------------------------


def get_payment(session: Session, payment_id: str) -> Payment:
    payment = session.scalars(sa.select(Payment).where(Payment.id == payment_id)).first()
    if payment is None:
        raise PaymentNotFoundError(f"no payment {payment_id}")
    return payment


def get_invoice(session: Session, invoice_id: str) -> Invoice:
    invoice = session.scalars(
        sa.select(Invoice).where(Invoice.id == invoice_id, Invoice.kind.in_(INVOICE_KINDS))
    ).first()
    if invoice is None:
        raise InvoiceNotFoundError(f"no invoice {invoice_id}")
    return invoice


def lock_invoice(session: Session, invoice_id: str) -> Invoice:
    invoice = session.scalars(
        sa.select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.kind.in_(INVOICE_KINDS))
        .with_for_update()
    ).first()
    if invoice is None:
        raise InvoiceNotFoundError(f"no invoice {invoice_id}")
    return invoice


def _settlement(session: Session, invoice_id: str) -> tuple[int, int, int]:
    """Payments in, refunds out (pending refunds included: that money is on its way out) and
    the balance transactions linked to the invoice."""
    paid_in = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_minor), 0)).where(
            Payment.invoice_id == invoice_id,
            Payment.kind == PAYMENT,
            Payment.status == SUCCEEDED,
            Payment.needs_refund.is_(False),
        )
    )
    paid_out = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_minor), 0)).where(
            Payment.invoice_id == invoice_id,
            Payment.kind == REFUND,
            Payment.status.in_((SUCCEEDED, PENDING)),
            Payment.needs_refund.is_(False),
        )
    )
    moved = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(CustomerBalanceTransaction.amount_minor), 0)).where(
            CustomerBalanceTransaction.invoice_id == invoice_id
        )
    )
    return int(paid_in or 0), int(paid_out or 0), int(moved or 0)


def amount_remaining(session: Session, invoice: Invoice) -> int:
    """What the invoice still wants; negative when the customer paid more than it is owed."""
    paid_in, paid_out, moved = _settlement(session, invoice.id)
    return rules.amount_remaining(
        gross=invoice.gross_minor or 0,
        credited=invoice.credited_gross_minor,
        paid_in=paid_in,
        paid_out=paid_out,
        moved_to_balance=moved,
    )


def customer_balances(session: Session, customer_id: str) -> dict[str, int]:
    rows = session.execute(
        sa.select(
            CustomerBalanceTransaction.currency,
            sa.func.sum(CustomerBalanceTransaction.amount_minor),
        )
        .where(CustomerBalanceTransaction.customer_id == customer_id)
        .group_by(CustomerBalanceTransaction.currency)
        .order_by(CustomerBalanceTransaction.currency)
    ).all()
    return {str(currency): int(total) for currency, total in rows}


# --- events -------------------------------------------------------------------------------


def emit_payment_event(session: Session, type_: str, payment: Payment, now: datetime) -> None:
    from billing.payments.schemas import PaymentOut

    emit_event(
        session,
        type_,
        {"object": dict(PaymentOut().dump(payment))},
        now=now,
        livemode=payment.livemode,
    )


# --- settling invoices --------------------------------------------------------------------


def _mark_invoice_paid(
    session: Session, invoice: Invoice, *, at: datetime, note: str, now: datetime
) -> None:
    mark_paid(session, invoice.id, {"paid_at": at, "note": note}, now=now)
    dunning.on_payment_succeeded(session, invoice, at=at)


def settle_payment(session: Session, invoice: Invoice, payment: Payment, *, now: datetime) -> None:
    """A payment has succeeded: pay the invoice off when it is covered, move any excess to the
    customer's balance, then use that balance for the customer's other open invoices.

    A void invoice takes nothing: the payment is kept (the money did arrive) and marked
    ``needs_refund``; the tenant pays it back (docs/payments.md)."""
    if payment.status != SUCCEEDED or payment.kind != PAYMENT:
        return
    if invoice.status in (VOID, DRAFT):
        payment.needs_refund = True
        session.flush()
        return
    session.flush()
    remaining = amount_remaining(session, invoice)
    excess = rules.excess_of(remaining, payment.amount_minor)
    if excess:
        session.add(
            CustomerBalanceTransaction(
                id=new_id("cbt"),
                livemode=invoice.livemode,
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                amount_minor=excess,
                kind=OVERPAYMENT,
                invoice_id=invoice.id,
                payment_id=payment.id,
                created_at=now,
            )
        )
        session.flush()
        remaining += excess
    if remaining <= 0 and invoice.status in PAYABLE:
        received = payment.received_at or now
        _mark_invoice_paid(session, invoice, at=received, note=f"payment {payment.id}", now=now)
    apply_customer_balance(
        session, invoice.customer_id, invoice.currency, now=now, livemode=invoice.livemode
    )


def apply_customer_balance(
    session: Session, customer_id: str, currency: str, *, now: datetime, livemode: bool
) -> int:
    """Use the customer's credit in ``currency`` for their open invoices, oldest first.
    Returns the minor units used."""
    balance = customer_balances(session, customer_id).get(currency, 0)
    if balance <= 0:
        return 0
    invoices = session.scalars(
        sa.select(Invoice)
        .where(
            Invoice.customer_id == customer_id,
            Invoice.currency == currency,
            Invoice.kind.in_(INVOICE_KINDS),
            Invoice.status.in_(PAYABLE),
            Invoice.livemode.is_(livemode),
        )
        .order_by(Invoice.issued_on, Invoice.number)
    ).all()
    # an invoice Stripe is charging right now is left alone: the charge's outcome decides
    candidates = [
        (invoice, amount_remaining(session, invoice))
        for invoice in invoices
        if not _has_pending_charge(session, invoice.id)
    ]
    takes = rules.allocate_credit(balance, [remaining for _, remaining in candidates])
    at = clock_now(session, get_customer(session, customer_id).test_clock_id, now)
    for (invoice, remaining), take in zip(candidates, takes, strict=True):
        if take <= 0:
            continue
        session.add(
            CustomerBalanceTransaction(
                id=new_id("cbt"),
                livemode=invoice.livemode,
                customer_id=customer_id,
                currency=currency,
                amount_minor=-take,
                kind=APPLIED,
                invoice_id=invoice.id,
                created_at=now,
            )
        )
        session.flush()
        if take == remaining:
            _mark_invoice_paid(session, invoice, at=at, note="customer credit balance", now=now)
    return sum(takes)


def _has_pending_charge(session: Session, invoice_id: str) -> bool:
    return (
        session.scalar(
            sa.select(Payment.id).where(
                Payment.invoice_id == invoice_id,
                Payment.kind == PAYMENT,
                Payment.status == PENDING,
            )
        )
        is not None
    )


def attempt_collection(session: Session, invoice_id: str, *, now: datetime) -> Any:
    """A dunning retry (`billing.dunning` looks it up here): see
    :func:`billing.payments.collection.attempt_collection`."""
    from billing.payments.collection import attempt_collection as attempt

    return attempt(session, invoice_id, now=now)


# --- manual payments (bank transfer) ------------------------------------------------------


def _same_transfer(payment: Payment, invoice_id: str, data: dict[str, Any]) -> bool:
    return (
        payment.provider == MANUAL
        and payment.kind == PAYMENT
        and payment.invoice_id == invoice_id
        and payment.amount_minor == data["amount"]
        and payment.currency == data["currency"]
    )


def record_manual_payment(
    session: Session, invoice_id: str, data: dict[str, Any], *, now: datetime
) -> tuple[Payment, bool]:
    """Record a bank transfer for an invoice. Returns the payment and whether it is new
    (False: the same reference was recorded before, and nothing was booked again)."""
    reference = data["reference"]
    existing = session.scalars(sa.select(Payment).where(Payment.provider_ref == reference)).first()
    if existing is not None:
        if _same_transfer(existing, invoice_id, data):
            return existing, False
        raise PaymentReferenceConflictError(
            f"the reference {reference!r} was recorded for payment {existing.id}",
            errors={"reference": ["already recorded with another invoice, amount or currency"]},
        )
    invoice = lock_invoice(session, invoice_id)
    if invoice.status == DRAFT:
        raise InvoiceNotPayableError(
            "a draft has no number and is not owed yet: finalize it first",
            errors={"invoice_id": ["draft"]},
        )
    if invoice.status == VOID:
        raise InvoiceNotPayableError(
            f"invoice {invoice.number} is void: pay the money back to the customer",
            errors={"invoice_id": ["void"]},
        )
    if data["currency"] != invoice.currency:
        raise PaymentCurrencyMismatchError(
            f"invoice {invoice.number} is in {invoice.currency}",
            errors={"currency": [f"must be {invoice.currency}"]},
        )
    customer = get_customer(session, invoice.customer_id)
    received_at = data.get("received_at") or clock_now(session, customer.test_clock_id, now)
    if received_at > now and customer.test_clock_id is None:
        raise ValidationFailedError(
            "a payment cannot be received in the future",
            code="payment_received_in_future",
            errors={"received_at": ["not after now"]},
        )
    payment = Payment(
        id=new_id("pay"),
        livemode=invoice.livemode,
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
        provider=MANUAL,
        kind=PAYMENT,
        status=SUCCEEDED,
        amount_minor=data["amount"],
        currency=invoice.currency,
        received_at=received_at,
        provider_ref=reference,
        note=data.get("note"),
        attempt=1,
        needs_refund=False,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    settle_payment(session, invoice, payment, now=now)
    emit_payment_event(session, "payment.succeeded", payment, now)
    return payment, True


# --- payment settings ---------------------------------------------------------------------


def payment_settings(session: Session, *, livemode: bool) -> PaymentSettings | None:
    return session.scalars(
        sa.select(PaymentSettings).where(PaymentSettings.livemode.is_(livemode))
    ).first()


def update_payment_settings(
    session: Session, data: dict[str, Any], *, livemode: bool, now: datetime
) -> PaymentSettings:
    """Set the default provider and the Stripe credentials (encrypted at rest). A key of the
    other mode (``sk_live_`` for test mode) is refused: test data must not reach live money."""
    settings = payment_settings(session, livemode=livemode)
    if settings is None:
        settings = PaymentSettings(
            id=new_id("pst"), livemode=livemode, provider=MANUAL, created_at=now, updated_at=now
        )
        session.add(settings)
    key = data.get("stripe_secret_key")
    if key is not None:
        prefixes = ("sk_live_", "rk_live_") if livemode else ("sk_test_", "rk_test_")
        if not key.startswith(prefixes):
            raise StripeKeyInvalidError(
                f"a {'live' if livemode else 'test'} mode credential needs a key starting "
                f"with {prefixes[0]}",
                errors={"stripe_secret_key": [f"must start with {prefixes[0]}"]},
            )
        settings.stripe_secret_key_encrypted = runtime.box().encrypt(key)
        settings.stripe_key_last4 = key[-4:]
    publishable = data.get("stripe_publishable_key")
    if publishable is not None:
        # the same guard as for the secret key: a live key in test mode would let test
        # customers enter real cards
        expected = "pk_live_" if livemode else "pk_test_"
        if not publishable.startswith(expected):
            raise StripeKeyInvalidError(
                f"a {'live' if livemode else 'test'} mode publishable key starts with {expected}",
                errors={"stripe_publishable_key": [f"must start with {expected}"]},
            )
        settings.stripe_publishable_key = publishable
    secret = data.get("stripe_webhook_secret")
    if secret is not None:
        settings.stripe_webhook_secret_encrypted = runtime.box().encrypt(secret)
    provider = data.get("provider")
    if provider is not None:
        settings.provider = provider
    if settings.provider == STRIPE and not settings.stripe_secret_key_encrypted:
        raise StripeKeyInvalidError(
            "the stripe provider needs a secret key",
            errors={"stripe_secret_key": ["required for provider stripe"]},
        )
    settings.updated_at = now
    session.flush()
    return settings


# --- the customer's payment set-up (Stripe) -----------------------------------------------


def payment_customer(session: Session, customer_id: str) -> PaymentCustomer | None:
    return session.scalars(
        sa.select(PaymentCustomer).where(
            PaymentCustomer.customer_id == customer_id, PaymentCustomer.provider == STRIPE
        )
    ).first()


def set_up_payment(
    session: Session, customer_id: str, data: dict[str, Any], *, now: datetime
) -> tuple[PaymentCustomer, str | None]:
    """Make sure the customer has a Stripe customer, then either attach a payment method the
    caller collected itself (``payment_method_id``) or start a SetupIntent whose client secret
    the customer's browser confirms with Stripe.js (``setup_intent.succeeded`` then makes it
    the default). Returns the set-up and the SetupIntent's client secret (None when a method
    was attached directly)."""
    customer = get_customer(session, customer_id)
    settings = payment_settings(session, livemode=customer.livemode)
    gateway = runtime.stripe_gateway(settings)
    record = payment_customer(session, customer_id)
    if record is None:
        record_id = new_id("pcu")
        stripe_id = gateway.create_customer(
            reference=customer.id,
            email=customer.email,
            name=customer.name,
            idempotency_key=f"{customer.id}-stripe-customer",
        )
        record = PaymentCustomer(
            id=record_id,
            livemode=customer.livemode,
            customer_id=customer.id,
            provider=STRIPE,
            external_customer_id=stripe_id,
            status=SETUP_PENDING,
            created_at=now,
            updated_at=now,
        )
        session.add(record)
    method = data.get("payment_method_id")
    client_secret = None
    if method:
        use_payment_method(session, record, method, now=now)
    else:
        intent = gateway.create_setup_intent(record.external_customer_id)
        record.setup_intent_id = intent.id
        client_secret = intent.client_secret
    record.updated_at = now
    session.flush()
    return record, client_secret


def use_payment_method(
    session: Session, record: PaymentCustomer, payment_method_id: str, *, now: datetime
) -> PaymentCustomer:
    """Attach a payment method to the Stripe customer and make it the default."""
    gateway = runtime.stripe_gateway(payment_settings(session, livemode=record.livemode))
    declined = gateway.attach_payment_method(record.external_customer_id, payment_method_id)
    if declined is not None:
        raise PaymentMethodDeclinedError(
            declined.failure_message or "the card was declined",
            errors={"payment_method_id": [declined.failure_code or "card_declined"]},
        )
    brand, last4 = gateway.payment_method_card(payment_method_id)
    record.default_payment_method_id = payment_method_id
    record.card_brand = brand
    record.card_last4 = last4
    record.status = READY
    record.updated_at = now
    session.flush()
    return record


# --- a card added by the customer in the browser (the portal's card page) -----------------


@dataclass(frozen=True)
class CardSetup:
    """What Stripe.js needs to collect a card: the tenant's publishable key and the
    SetupIntent's client secret."""

    setup_intent_id: str
    client_secret: str
    publishable_key: str


@dataclass(frozen=True)
class CardSetupOutcome:
    status: str  # the SetupIntent's status at Stripe
    record: PaymentCustomer
    failure_message: str | None = None


def card_setup_available(session: Session, *, livemode: bool) -> bool:
    """Stripe.js needs the publishable key, the SetupIntent the secret key."""
    settings = payment_settings(session, livemode=livemode)
    return bool(
        settings and settings.stripe_secret_key_encrypted and settings.stripe_publishable_key
    )


def start_card_setup(session: Session, customer_id: str, *, now: datetime) -> CardSetup:
    """A SetupIntent for the customer (creating the Stripe customer when needed), for the
    customer's browser to confirm with Stripe.js."""
    customer = get_customer(session, customer_id)
    settings = payment_settings(session, livemode=customer.livemode)
    if settings is None or not settings.stripe_publishable_key:
        raise StripeNotConfiguredError("set a Stripe publishable key: PUT /v1/payment-settings")
    record, client_secret = set_up_payment(session, customer_id, {}, now=now)
    if client_secret is None or record.setup_intent_id is None:  # pragma: no cover
        raise RuntimeError("set_up_payment without a payment method returns a SetupIntent")
    return CardSetup(record.setup_intent_id, client_secret, settings.stripe_publishable_key)


def complete_card_setup(
    session: Session, customer_id: str, setup_intent_id: str, *, now: datetime
) -> CardSetupOutcome:
    """The browser is back from Stripe with a SetupIntent id. Its state is asked from Stripe
    with the tenant's key (the id travelled through the browser and proves nothing), and it
    must belong to this customer's Stripe customer: another customer's id is not found. A
    succeeded one makes its payment method the customer's default; calling again for the
    same intent changes nothing."""
    record = payment_customer(session, customer_id)
    if record is None:
        raise SetupIntentNotFoundError(f"no card set-up for customer {customer_id}")
    gateway = runtime.stripe_gateway(payment_settings(session, livemode=record.livemode))
    intent = gateway.retrieve_setup_intent(setup_intent_id)
    if intent is None or intent.customer_id != record.external_customer_id:
        raise SetupIntentNotFoundError(f"no card set-up {setup_intent_id} for this customer")
    method = intent.payment_method_id
    if intent.status == SUCCEEDED and method and record.default_payment_method_id != method:
        use_payment_method(session, record, method, now=now)
    return CardSetupOutcome(intent.status, record, intent.failure_message)
