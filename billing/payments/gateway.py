"""The Stripe gateway: a thin, typed adapter over the official `stripe` client.

Everything that leaves abowerk for Stripe goes through here, with explicit idempotency keys
derived from our own ids, so that a retry after a timeout can never charge twice. Failures are
sorted into what the caller must treat differently:

- a declined card is an *answer* (`ChargeResult(status="failed", ...)`), not an exception;
- Stripe unreachable, rate-limited or failing on its side is `PaymentProviderUnavailableError`
  (kind `unavailable`: retry later, never "invalid");
- a wrong or revoked secret key is `PaymentProviderConfigError`.

`api_base` points the client at another server: the tests start localstripe on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import stripe

from billing.payments.errors import (
    InvalidStripeSignatureError,
    PaymentProviderConfigError,
    PaymentProviderUnavailableError,
)

WEBHOOK_TOLERANCE_SECONDS = 300  # stale signed payloads are replays


@dataclass(frozen=True)
class ChargeResult:
    status: Literal["succeeded", "requires_action", "processing", "failed"]
    payment_intent_id: str | None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    client_secret: str


@dataclass(frozen=True)
class SetupIntentState:
    """A SetupIntent as Stripe reports it now (never as a return URL claims it)."""

    id: str
    status: str  # requires_payment_method, requires_action, processing, succeeded, canceled
    customer_id: str | None
    payment_method_id: str | None
    failure_message: str | None = None


def _id_of(value: Any) -> str | None:
    # an expandable field: an id, an object with one, or nothing
    if value is None:
        return None
    if isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return str(found) if found else None


@contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except stripe.AuthenticationError as exc:
        raise PaymentProviderConfigError("Stripe refused the secret key") from exc
    except stripe.PermissionError as exc:
        raise PaymentProviderConfigError("the Stripe key lacks a permission") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise PaymentProviderUnavailableError(f"Stripe is not reachable: {exc}") from exc
    except stripe.APIError as exc:
        raise PaymentProviderUnavailableError(f"Stripe failed: {exc}") from exc


class StripeGateway:
    def __init__(
        self, secret_key: str, *, api_base: str | None = None, http_client: Any = None
    ) -> None:
        options: dict[str, Any] = {"max_network_retries": 2}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        if http_client is not None:
            options["http_client"] = http_client
        self._v1 = stripe.StripeClient(secret_key, **options).v1

    def create_customer(
        self, *, reference: str, email: str, name: str, idempotency_key: str
    ) -> str:
        with _translate_errors():
            customer = self._v1.customers.create(
                params={"email": email, "name": name, "metadata": {"abowerk_customer": reference}},
                options={"idempotency_key": idempotency_key},
            )
        return str(customer.id)

    def delete_customer(self, customer_id: str) -> bool:
        """True when Stripe deleted it (or it was gone already)."""
        try:
            with _translate_errors():
                result = self._v1.customers.delete(customer_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return True
            raise
        return bool(getattr(result, "deleted", False))

    def create_setup_intent(self, customer_id: str) -> SetupIntentInfo:
        """For the customer's browser (Stripe.js) to collect and confirm a card off-session."""
        with _translate_errors():
            # payment_method_types: accepted by Stripe and required by localstripe, though the
            # typed params of stripe 16 no longer list it
            params: dict[str, Any] = {
                "customer": customer_id,
                "payment_method_types": ["card"],
                "usage": "off_session",
            }
            intent = self._v1.setup_intents.create(params=params)  # type: ignore[arg-type]
        return SetupIntentInfo(str(intent.id), str(intent.client_secret))

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentState | None:
        """None when Stripe does not know the id (of this account)."""
        try:
            with _translate_errors():
                intent = self._v1.setup_intents.retrieve(setup_intent_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise
        error = getattr(intent, "last_setup_error", None)
        return SetupIntentState(
            id=str(intent.id),
            status=str(intent.status),
            customer_id=_id_of(getattr(intent, "customer", None)),
            payment_method_id=_id_of(getattr(intent, "payment_method", None)),
            failure_message=getattr(error, "message", None) if error else None,
        )

    def attach_payment_method(
        self, customer_id: str, payment_method_id: str
    ) -> ChargeResult | None:
        """Attach a confirmed payment method; a card refused at this point is an answer."""
        try:
            with _translate_errors():
                self._v1.payment_methods.attach(payment_method_id, params={"customer": customer_id})
        except stripe.CardError as exc:
            return ChargeResult("failed", None, exc.code, exc.user_message)
        return None

    def payment_method_card(self, payment_method_id: str) -> tuple[str | None, str | None]:
        """The card's brand and last four digits, for the customer's own view of it."""
        with _translate_errors():
            method = self._v1.payment_methods.retrieve(payment_method_id)
        card = getattr(method, "card", None)
        if card is None:
            return None, None
        brand = getattr(card, "brand", None)
        last4 = getattr(card, "last4", None)
        return (str(brand) if brand else None, str(last4) if last4 else None)

    def charge(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        """An off-session PaymentIntent, confirmed at once. The invoice number travels in
        `metadata` (shown in Stripe's dashboard), not in `description`, which localstripe
        does not accept."""
        try:
            with _translate_errors():
                intent = self._v1.payment_intents.create(
                    params={
                        "amount": amount_minor,
                        "currency": currency.lower(),
                        "customer": customer_id,
                        "payment_method": payment_method_id,
                        "off_session": True,
                        "confirm": True,
                        "metadata": metadata,
                    },
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.CardError as exc:
            intent_id = None
            error = getattr(exc, "error", None)
            if error is not None and getattr(error, "payment_intent", None) is not None:
                intent_id = str(error.payment_intent.id)
            return ChargeResult("failed", intent_id, exc.code, exc.user_message)
        status = str(intent.status)
        if status == "succeeded":
            return ChargeResult("succeeded", str(intent.id))
        if status in ("requires_action", "requires_confirmation"):
            return ChargeResult("requires_action", str(intent.id))
        if status == "processing":
            return ChargeResult("processing", str(intent.id))
        error = getattr(intent, "last_payment_error", None)
        return ChargeResult(
            "failed",
            str(intent.id),
            getattr(error, "code", None),
            getattr(error, "message", None),
        )

    def refund(
        self, *, payment_intent_id: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult:
        with _translate_errors():
            refund = self._v1.refunds.create(
                params={"payment_intent": payment_intent_id, "amount": amount_minor},
                options={"idempotency_key": idempotency_key},
            )
        return RefundResult(str(refund.id), str(refund.status))


def verify_stripe_event(
    payload: bytes,
    signature_header: str | None,
    secret: str,
    *,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """Verify Stripe's signature over the raw body and its timestamp; return the event."""
    if not signature_header:
        raise InvalidStripeSignatureError("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), signature_header, secret, tolerance
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise InvalidStripeSignatureError(str(exc)) from exc
    import json

    event: dict[str, Any] = json.loads(payload)
    return event
