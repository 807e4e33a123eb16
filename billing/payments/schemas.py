"""Payment input and output. Amounts are positive integer minor units; a refund is a payment
of ``kind`` ``refund``, never a negative amount."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from billing.payments.models import KINDS, PROVIDERS, STATUSES
from saas.catalog.currencies import CURRENCIES
from saas.kernel.pagination import ListArgs

MAX_AMOUNT = 10**12  # ten billion in a 2-decimal currency: a typo guard


class PaymentOut(ma.Schema):
    object = ma.fields.Constant("payment")
    id = ma.fields.String()
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    invoice_id = ma.fields.String()
    provider = ma.fields.String()
    kind = ma.fields.String()
    status = ma.fields.String()
    amount = ma.fields.Integer(attribute="amount_minor")
    currency = ma.fields.String()
    received_at = ma.fields.AwareDateTime(allow_none=True)
    reference = ma.fields.String(attribute="provider_ref", allow_none=True)
    credit_note_id = ma.fields.String(allow_none=True)
    refunded_payment_id = ma.fields.String(allow_none=True)
    needs_refund = ma.fields.Boolean()
    attempt = ma.fields.Integer()
    failure_code = ma.fields.String(allow_none=True)
    failure_message = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class PaymentListOut(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(PaymentOut))
    has_more = ma.fields.Boolean()


class PaymentListArgs(ListArgs):
    customer_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    invoice_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(KINDS))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    provider = ma.fields.String(load_default=None, validate=ma.validate.OneOf(PROVIDERS))


class ManualPaymentIn(ma.Schema):
    amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_AMOUNT),
        metadata={"description": "Minor units received, greater than 0."},
    )
    currency = ma.fields.String(
        required=True, validate=ma.validate.OneOf(sorted(CURRENCIES)), metadata={"example": "EUR"}
    )
    reference = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=255),
        metadata={
            "description": "The bank's reference of the transfer (unique: recording the same "
            "reference again returns the first record)."
        },
    )
    received_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    note = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=500)
    )


class InvoicePaymentsOut(ma.Schema):
    object = ma.fields.Constant("invoice_payments")
    invoice_id = ma.fields.String()
    status = ma.fields.String()
    currency = ma.fields.String()
    amount_due = ma.fields.Integer()
    amount_paid = ma.fields.Integer()
    amount_remaining = ma.fields.Integer()
    data = ma.fields.List(ma.fields.Nested(PaymentOut))


class PaymentSettingsIn(ma.Schema):
    provider = ma.fields.String(load_default=None, validate=ma.validate.OneOf(PROVIDERS))
    stripe_secret_key = ma.fields.String(
        load_default=None, load_only=True, validate=ma.validate.Length(min=8, max=255)
    )
    stripe_webhook_secret = ma.fields.String(
        load_default=None, load_only=True, validate=ma.validate.Length(min=8, max=255)
    )
    stripe_publishable_key = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(min=8, max=255),
        metadata={
            "description": "pk_test_… or pk_live_… (of this mode): lets customers add a card "
            "in the portal with Stripe.js. Public, so it is returned as given."
        },
    )

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if all(v is None for v in data.values()):
            raise ma.ValidationError("give at least one setting")


class PaymentSettingsOut(ma.Schema):
    object = ma.fields.Constant("payment_settings")
    livemode = ma.fields.Boolean()
    provider = ma.fields.String()
    stripe_configured = ma.fields.Boolean()
    stripe_key_last4 = ma.fields.String(allow_none=True)
    stripe_publishable_key = ma.fields.String(allow_none=True)
    stripe_webhook_configured = ma.fields.Boolean()
    stripe_webhook_url = ma.fields.String()


class PaymentSetupIn(ma.Schema):
    payment_method_id = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=3, max=255),
        metadata={
            "description": "A Stripe PaymentMethod the caller collected itself; without it a "
            "SetupIntent is created for the customer's browser to confirm."
        },
    )


class PaymentSetupOut(ma.Schema):
    object = ma.fields.Constant("payment_setup")
    customer_id = ma.fields.String()
    provider = ma.fields.String()
    status = ma.fields.String()
    stripe_customer_id = ma.fields.String(attribute="external_customer_id")
    setup_intent_id = ma.fields.String(allow_none=True)
    client_secret = ma.fields.String(allow_none=True)
    default_payment_method_id = ma.fields.String(allow_none=True)
    card_brand = ma.fields.String(allow_none=True)
    card_last4 = ma.fields.String(allow_none=True)


class BalanceOut(ma.Schema):
    currency = ma.fields.String()
    amount = ma.fields.Integer()


class CustomerBalanceOut(ma.Schema):
    object = ma.fields.Constant("customer_balance")
    customer_id = ma.fields.String()
    balances = ma.fields.List(ma.fields.Nested(BalanceOut))
