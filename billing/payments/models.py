"""Payment tables: payments and refunds, the customer credit balance, per-customer payment
set-up, the tenant's payment settings and the inbound Stripe events.

* ``payments``: one row per movement of money, ``kind`` ``payment`` (money in) or ``refund``
  (money out). Amounts are positive minor units; the direction is the kind. ``received_at``
  is set when the money moved (``succeeded``): turnover counters sum succeeded payments minus
  refunds by it. ``provider_ref`` (Stripe PaymentIntent / Refund id, or the bank's reference of
  a transfer) is unique per tenant and mode, which absorbs a double submission.
  ``idempotency_key`` is our own de-duplication of calls to Stripe (localstripe ignores
  Stripe's idempotency keys): one row per invoice and attempt, per credit note refund.
* ``customer_balance_transactions``: the customer's credit balance as a ledger (signed: a
  positive amount is credit the customer gains, negative credit used). The excess of an
  overpayment is added here (``invoice_id`` = the overpaid invoice) and used for the
  customer's next open invoices (``invoice_id`` = the invoice it settles). What an invoice has
  been settled by is therefore: its payments − its refunds − its balance transactions.
* ``payment_customers``: the customer's account at a payment provider (Stripe customer id,
  default payment method and a card summary for the customer's own view).
* ``payment_settings``: per tenant and mode, the default provider and the Stripe credentials,
  encrypted at rest (:mod:`saas.kernel.secretbox`); the publishable key, which every browser
  sees, in clear.
* ``stripe_events``: every accepted inbound Stripe event id, so a replay is absorbed. No
  payload is stored: it may hold billing details of the person.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

MANUAL = "manual"
STRIPE = "stripe"
PROVIDERS = (MANUAL, STRIPE)

PAYMENT = "payment"
REFUND = "refund"
KINDS = (PAYMENT, REFUND)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELED)

# customer balance transaction kinds
OVERPAYMENT = "overpayment"  # + the excess of a payment
APPLIED = "applied"  # − credit used for an invoice
UNALLOCATED = "unallocated"  # + money for an invoice that cannot take it (void), owed back
BALANCE_KINDS = (OVERPAYMENT, APPLIED, UNALLOCATED)

# payment customer set-up states
SETUP_PENDING = "setup_pending"
READY = "ready"
SETUP_STATES = (SETUP_PENDING, READY)

# inbound event handling outcomes
PROCESSED = "processed"
IGNORED = "ignored"
EVENT_OUTCOMES = (PROCESSED, IGNORED)


def _fk(columns: list[str], table: str, *, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", *columns], [f"{table}.tenant_id", f"{table}.id"], ondelete=ondelete
    )


class Payment(TenantOwned, HasLivemode, Base):
    __tablename__ = "payments"
    __table_args__ = (
        _fk(["customer_id"], "customers"),
        # kept as long as the invoice they settle: deleted with it when its retention ends
        _fk(["invoice_id"], "invoices", ondelete="CASCADE"),
        _fk(["credit_note_id"], "invoices", ondelete="CASCADE"),
        _fk(["refunded_payment_id"], "payments", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "livemode", "provider_ref"),
        sa.UniqueConstraint("tenant_id", "livemode", "idempotency_key"),
        sa.CheckConstraint(f"provider IN {PROVIDERS!r}", name="provider"),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint("amount_minor > 0", name="amount_minor"),
        sa.CheckConstraint("attempt >= 1", name="attempt"),
        sa.CheckConstraint("status <> 'succeeded' OR received_at IS NOT NULL", name="received"),
        sa.Index("ix_payments_tenant_id_invoice_id", "tenant_id", "invoice_id"),
        sa.Index("ix_payments_tenant_id_customer_id", "tenant_id", "customer_id"),
        sa.Index("ix_payments_tenant_id_received_at", "tenant_id", "received_at"),
        sa.Index("ix_payments_tenant_id_credit_note_id", "tenant_id", "credit_note_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # pay_…
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    invoice_id: Mapped[str] = mapped_column(sa.String(40))
    provider: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger())
    currency: Mapped[str] = mapped_column(sa.String(3))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_ref: Mapped[str | None] = mapped_column(sa.String(255))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    credit_note_id: Mapped[str | None] = mapped_column(sa.String(40))  # refunds
    refunded_payment_id: Mapped[str | None] = mapped_column(sa.String(40))  # refunds
    # a payment that reached an invoice that cannot take it (void): owed back to the customer;
    # on a refund: it returns such money. Either way it settles nothing.
    needs_refund: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    failure_message: Mapped[str | None] = mapped_column(sa.String(500))
    # free text of a bank transfer (the payer's own words): personal data
    note: Mapped[str | None] = mapped_column(sa.String(500), info={"personal_data": True})
    attempt: Mapped[int] = mapped_column(sa.Integer(), default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerBalanceTransaction(TenantOwned, HasLivemode, Base):
    __tablename__ = "customer_balance_transactions"
    __table_args__ = (
        _fk(["customer_id"], "customers"),
        _fk(["invoice_id"], "invoices", ondelete="CASCADE"),
        _fk(["payment_id"], "payments", ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN {BALANCE_KINDS!r}", name="kind"),
        sa.CheckConstraint("amount_minor <> 0", name="amount_minor"),
        sa.Index(
            "ix_customer_balance_transactions_tenant_id_customer_id", "tenant_id", "customer_id"
        ),
        sa.Index(
            "ix_customer_balance_transactions_tenant_id_invoice_id", "tenant_id", "invoice_id"
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # cbt_…
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger())  # signed
    kind: Mapped[str] = mapped_column(sa.String(16))
    invoice_id: Mapped[str | None] = mapped_column(sa.String(40))
    payment_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentCustomer(TenantOwned, HasLivemode, Base):
    __tablename__ = "payment_customers"
    __table_args__ = (
        _fk(["customer_id"], "customers"),
        sa.UniqueConstraint("tenant_id", "livemode", "provider", "customer_id"),
        sa.UniqueConstraint("tenant_id", "livemode", "external_customer_id"),
        sa.CheckConstraint(f"provider IN {PROVIDERS!r}", name="provider"),
        sa.CheckConstraint(f"status IN {SETUP_STATES!r}", name="status"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # pcu_…
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    provider: Mapped[str] = mapped_column(sa.String(16))
    external_customer_id: Mapped[str] = mapped_column(sa.String(255))  # Stripe cus_…
    status: Mapped[str] = mapped_column(sa.String(16))
    setup_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    default_payment_method_id: Mapped[str | None] = mapped_column(sa.String(255))
    card_brand: Mapped[str | None] = mapped_column(sa.String(32), info={"personal_data": True})
    card_last4: Mapped[str | None] = mapped_column(sa.String(4), info={"personal_data": True})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentSettings(TenantOwned, HasLivemode, Base):
    __tablename__ = "payment_settings"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "livemode"),
        sa.CheckConstraint(f"provider IN {PROVIDERS!r}", name="provider"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # pst_…
    provider: Mapped[str] = mapped_column(sa.String(16), default=MANUAL)
    # SecretBox tokens (saas.kernel.secretbox), rotated by `abowerk secrets reencrypt`
    stripe_secret_key_encrypted: Mapped[str | None] = mapped_column(sa.Text())
    stripe_webhook_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text())
    stripe_key_last4: Mapped[str | None] = mapped_column(sa.String(4))
    # pk_test_/pk_live_: public by design (the portal's card page gives it to Stripe.js)
    stripe_publishable_key: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StripeEvent(TenantOwned, HasLivemode, Base):
    __tablename__ = "stripe_events"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "event_id"),
        sa.CheckConstraint(f"outcome IN {EVENT_OUTCOMES!r}", name="outcome"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # sev_…
    event_id: Mapped[str] = mapped_column(sa.String(255))  # Stripe evt_…
    type: Mapped[str] = mapped_column(sa.String(100))
    object_id: Mapped[str | None] = mapped_column(sa.String(255))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
