"""The Stripe gateway against localstripe: the real `stripe` client over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest

from billing.payments.errors import InvalidStripeSignatureError, PaymentProviderUnavailableError
from billing.payments.gateway import StripeGateway, verify_stripe_event
from tests.support.localstripe import running_localstripe


@pytest.fixture(scope="module")
def stripe_base() -> Iterator[str]:
    with running_localstripe() as base:
        yield base


@pytest.fixture
def gateway(stripe_base: str) -> StripeGateway:
    return StripeGateway("sk_test_abowerk", api_base=stripe_base)


def _customer_with_card(gateway: StripeGateway, card_pm: str, ref: str) -> tuple[str, str]:
    customer = gateway.create_customer(
        reference=ref, email=f"{ref}@example.de", name="Erika", idempotency_key=f"cus-{ref}"
    )
    assert gateway.attach_payment_method(customer, card_pm) is None
    return customer, card_pm


def test_charge_sends_our_idempotency_key_on_every_retry_when_charging(
    stripe_base: str,
) -> None:
    # localstripe does not de-duplicate by Idempotency-Key (Stripe does), so this test checks
    # what abowerk controls: the key, derived from our own ids, goes out on every attempt.
    import requests
    import stripe

    sent: list[str | None] = []
    session = requests.Session()
    session.hooks["response"].append(
        lambda resp, *a, **k: (
            sent.append(resp.request.headers.get("Idempotency-Key"))
            if resp.request.method == "POST" and "/payment_intents" in resp.request.url
            else None
        )
    )
    gateway = StripeGateway(
        "sk_test_abowerk", api_base=stripe_base, http_client=stripe.RequestsClient(session=session)
    )
    customer, pm = _customer_with_card(gateway, "pm_card_visa", "ok1")
    args = {
        "customer_id": customer,
        "payment_method_id": pm,
        "amount_minor": 11900,
        "currency": "EUR",
        "idempotency_key": "inv_test_1-attempt-1",
        "metadata": {"invoice_id": "inv_test_1"},
    }
    first = gateway.charge(**args)  # type: ignore[arg-type]
    gateway.charge(**args)  # type: ignore[arg-type]
    assert first.status == "succeeded"
    assert sent == ["inv_test_1-attempt-1", "inv_test_1-attempt-1"]


def test_declined_charge_is_an_answer_not_an_error_when_card_fails(gateway: StripeGateway) -> None:
    customer, pm = _customer_with_card(gateway, "pm_card_chargeCustomerFail", "declined1")
    result = gateway.charge(
        customer_id=customer,
        payment_method_id=pm,
        amount_minor=500,
        currency="EUR",
        idempotency_key="inv_test_2-attempt-1",
        metadata={},
    )
    assert result.status == "failed"
    assert result.failure_code == "card_declined"


def test_card_declined_at_attach_is_reported_when_setting_up(gateway: StripeGateway) -> None:
    customer = gateway.create_customer(
        reference="att", email="att@example.de", name="X", idempotency_key="cus-att"
    )
    result = gateway.attach_payment_method(customer, "pm_card_visa_chargeDeclined")
    assert result is not None
    assert result.status == "failed"


def test_refund_returns_money_when_requested(gateway: StripeGateway) -> None:
    customer, pm = _customer_with_card(gateway, "pm_card_visa", "ref1")
    paid = gateway.charge(
        customer_id=customer,
        payment_method_id=pm,
        amount_minor=2000,
        currency="EUR",
        idempotency_key="inv_test_3-attempt-1",
        metadata={},
    )
    assert paid.payment_intent_id is not None
    refund = gateway.refund(
        payment_intent_id=paid.payment_intent_id, amount_minor=500, idempotency_key="cn_1"
    )
    assert refund.refund_id.startswith("re_")
    assert refund.status == "succeeded"


def test_setup_intent_and_customer_deletion_work_when_called(gateway: StripeGateway) -> None:
    customer = gateway.create_customer(
        reference="del", email="del@example.de", name="X", idempotency_key="cus-del"
    )
    intent = gateway.create_setup_intent(customer)
    assert intent.id.startswith("seti_")
    assert intent.client_secret
    assert gateway.delete_customer(customer) is True


def test_unreachable_stripe_is_unavailable_not_invalid_when_server_is_down() -> None:
    down = StripeGateway("sk_test_abowerk", api_base="http://127.0.0.1:9")
    with pytest.raises(PaymentProviderUnavailableError):
        down.create_customer(reference="x", email="x@example.de", name="X", idempotency_key="k")


def _sign(payload: bytes, secret: str, at: int) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


@pytest.mark.parametrize(
    ("mutate", "ok"),
    [
        (lambda p, s, t: (p, _sign(p, s, t)), True),
        (lambda p, s, t: (p, _sign(p, "whsec_wrong", t)), False),
        (lambda p, s, t: (p + b" ", _sign(p, s, t)), False),
        (lambda p, s, t: (p, _sign(p, s, t - 3600)), False),
        (lambda p, s, t: (p, ""), False),
    ],
    ids=["valid", "wrong-secret", "body-changed", "stale", "missing"],
)
def test_inbound_stripe_signature_is_checked_on_raw_body_when_verifying(
    mutate: object, ok: bool
) -> None:
    secret = "whsec_test_inbound"
    payload = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()
    body, header = mutate(payload, secret, int(time.time()))  # type: ignore[operator]
    if ok:
        assert verify_stripe_event(body, header, secret)["id"] == "evt_1"
    else:
        with pytest.raises(InvalidStripeSignatureError):
            verify_stripe_event(body, header, secret)
