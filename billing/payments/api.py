# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""Payments over HTTP (scope ``payments``):

* ``GET /v1/payments``, ``GET /v1/payments/{id}``;
* ``POST /v1/invoices/{id}/payments`` (a bank transfer received), ``GET`` the invoice's
  payments and what it still wants;
* ``GET/PUT /v1/payment-settings`` (the Stripe key goes in, only its last four come out);
* ``POST /v1/customers/{id}/payment-setup``, ``GET /v1/customers/{id}/balance``;
* Stripe's inbound events: :mod:`billing.payments.inbound_api`.
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from flask.blueprints import BlueprintSetupState
from flask.views import MethodView

from billing.payments import queries, runtime, services
from billing.payments import tasks as _tasks  # noqa: F401  (registers the worker tasks)
from billing.payments.models import MANUAL, PaymentCustomer, PaymentSettings
from billing.payments.schemas import (
    CustomerBalanceOut,
    InvoicePaymentsOut,
    ManualPaymentIn,
    PaymentListArgs,
    PaymentListOut,
    PaymentOut,
    PaymentSettingsIn,
    PaymentSettingsOut,
    PaymentSetupIn,
    PaymentSetupOut,
)
from saas.auth.middleware import current_principal, requires
from saas.customers.services import get_customer
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.kernel.pagination import list_envelope
from saas.kernel.secretbox import SecretBox

blp = Blueprint(
    "payments",
    __name__,
    url_prefix="/v1",
    description="Payments: bank transfers, Stripe collection and refunds, credit balances",
)

WRITE_PROBLEMS = (400, 401, 403, 404, 409, 413, 422, 429, 503)


def _configure(state: BlueprintSetupState) -> None:
    settings = state.app.config["ABOWERK_SETTINGS"]
    runtime.configure(
        box=SecretBox(settings.secret_key, settings.previous_secret_keys),
        stripe_api_base=getattr(settings, "stripe_api_base", None),
    )


blp.record_once(_configure)


@blp.route("/payments")
class PaymentCollection(MethodView):
    @blp.arguments(PaymentListArgs, location="query")
    @blp.response(200, PaymentListOut)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("payments", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List payments and refunds, newest first."""
        rows, has_more = queries.list_payments(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            customer_id=args["customer_id"],
            invoice_id=args["invoice_id"],
            kind=args["kind"],
            status=args["status"],
            provider=args["provider"],
        )
        return list_envelope(request.path, rows, has_more)


@blp.route("/payments/<payment_id>")
class PaymentItem(MethodView):
    @blp.response(200, PaymentOut)
    @blp.problems(401, 403, 404, 429)
    @requires("payments", "read")
    def get(self, payment_id: str) -> Any:
        """Get a payment or refund."""
        return services.get_payment(session(), payment_id)


def _invoice_payments(invoice_id: str) -> dict[str, Any]:
    db = session()
    invoice = services.get_invoice(db, invoice_id)
    due = (invoice.gross_minor or 0) - invoice.credited_gross_minor
    remaining = services.amount_remaining(db, invoice)
    return {
        "invoice_id": invoice.id,
        "status": invoice.status,
        "currency": invoice.currency,
        "amount_due": due,
        "amount_paid": due - remaining,
        "amount_remaining": max(remaining, 0),
        "data": queries.invoice_payments(db, invoice.id),
    }


@blp.route("/invoices/<invoice_id>/payments")
class InvoicePayments(MethodView):
    @blp.response(200, InvoicePaymentsOut)
    @blp.problems(401, 403, 404, 429)
    @requires("payments", "read")
    def get(self, invoice_id: str) -> dict[str, Any]:
        """The invoice's payments and refunds, and what it still wants."""
        return _invoice_payments(invoice_id)

    @blp.arguments(ManualPaymentIn)
    @blp.response(201, PaymentOut)
    @blp.alt_response(200, schema=PaymentOut, description="The same transfer, recorded before")
    @blp.problems(*WRITE_PROBLEMS)
    @requires("payments", "write")
    def post(self, data: dict[str, Any], invoice_id: str) -> Any:
        """Record a bank transfer received for the invoice (partial, full or more)."""
        payment, created = services.record_manual_payment(session(), invoice_id, data, now=utcnow())
        return payment, (201 if created else 200)


def _settings_out(settings: PaymentSettings | None, livemode: bool) -> dict[str, Any]:
    principal = current_principal()
    return {
        "livemode": livemode,
        "provider": settings.provider if settings else MANUAL,
        "stripe_configured": bool(settings and settings.stripe_secret_key_encrypted),
        "stripe_key_last4": settings.stripe_key_last4 if settings else None,
        "stripe_publishable_key": settings.stripe_publishable_key if settings else None,
        "stripe_webhook_configured": bool(settings and settings.stripe_webhook_secret_encrypted),
        "stripe_webhook_url": url_for(
            "stripe_webhooks.StripeWebhook", tenant_id=principal.tenant_id, _external=True
        ),
    }


@blp.route("/payment-settings")
class PaymentSettingsItem(MethodView):
    @blp.response(200, PaymentSettingsOut)
    @blp.problems(401, 403, 429)
    @requires("payments", "read")
    def get(self) -> dict[str, Any]:
        """The payment provider of this mode; secrets are never returned."""
        livemode = current_principal().livemode
        return _settings_out(services.payment_settings(session(), livemode=livemode), livemode)

    @blp.arguments(PaymentSettingsIn)
    @blp.response(200, PaymentSettingsOut)
    @blp.problems(400, 401, 403, 413, 422, 429)
    @requires("payments", "write")
    def put(self, data: dict[str, Any]) -> dict[str, Any]:
        """Set the provider (`manual` or `stripe`), the Stripe secret key and webhook
        signing secret of this mode (stored encrypted) and the publishable key (public: the
        portal's card page gives it to Stripe.js)."""
        livemode = current_principal().livemode
        settings = services.update_payment_settings(
            session(), data, livemode=livemode, now=utcnow()
        )
        return _settings_out(settings, livemode)


def _setup_out(record: PaymentCustomer, client_secret: str | None) -> dict[str, Any]:
    out = {c: getattr(record, c) for c in PaymentSetupOut().fields if hasattr(record, c)}
    out["external_customer_id"] = record.external_customer_id
    out["client_secret"] = client_secret
    return out


@blp.route("/customers/<customer_id>/payment-setup")
class CustomerPaymentSetup(MethodView):
    @blp.arguments(PaymentSetupIn)
    @blp.response(200, PaymentSetupOut)
    @blp.problems(*WRITE_PROBLEMS)
    @requires("payments", "write")
    def post(self, data: dict[str, Any], customer_id: str) -> dict[str, Any]:
        """Set up Stripe collection for the customer: a SetupIntent for the browser (its
        client secret), or attach a payment method collected elsewhere."""
        record, client_secret = services.set_up_payment(session(), customer_id, data, now=utcnow())
        return _setup_out(record, client_secret)

    @blp.response(200, PaymentSetupOut)
    @blp.problems(401, 403, 404, 429)
    @requires("payments", "read")
    def get(self, customer_id: str) -> dict[str, Any]:
        """The customer's Stripe set-up (404 when there is none)."""
        get_customer(session(), customer_id)
        record = services.payment_customer(session(), customer_id)
        if record is None:
            from saas.kernel.errors import NotFoundError

            raise NotFoundError(
                f"customer {customer_id} has no payment set-up", code="payment_setup_not_found"
            )
        return _setup_out(record, None)


@blp.route("/customers/<customer_id>/balance")
class CustomerBalance(MethodView):
    @blp.response(200, CustomerBalanceOut)
    @blp.problems(401, 403, 404, 429)
    @requires("payments", "read")
    def get(self, customer_id: str) -> dict[str, Any]:
        """The customer's credit balance per currency (positive: credit to be used)."""
        get_customer(session(), customer_id)
        balances = services.customer_balances(session(), customer_id)
        return {
            "customer_id": customer_id,
            "balances": [{"currency": c, "amount": a} for c, a in balances.items()],
        }
