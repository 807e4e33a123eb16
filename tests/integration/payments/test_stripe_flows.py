"""Stripe collection end to end against a real localstripe process and the real `stripe`
client, on SQLite and PostgreSQL: success, a declined card then a retry that succeeds, a
refund through a credit note, the SetupIntent set-up, and the inbound webhook's faults (bad
signature, stale timestamp, replayed and unknown events, money for a void invoice).

localstripe sends no webhooks of its own here: the tests sign Stripe-shaped events with the
tenant's webhook secret, their objects read back from localstripe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.payments.collection import attempt_collection
from billing.payments.tasks import SweepSummary, sweep_tenant
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_invoices import get, make_customer, make_finalized
from tests.api.test_payments import standing
from tests.conftest import POSTGRES_ONLY, TenantCtx

WEBHOOK_SECRET = "whsec_test_abowerk_inbound"


def configure(client: FlaskClient, t: TenantCtx) -> dict[str, Any]:
    resp = client.put(
        "/v1/payment-settings",
        json={
            "provider": "stripe",
            "stripe_secret_key": f"sk_test_{secrets.token_hex(8)}",
            "stripe_webhook_secret": WEBHOOK_SECRET,
        },
        headers=t.headers,
    )
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def card(client: FlaskClient, t: TenantCtx, customer_id: str, pm: str) -> dict[str, Any]:
    resp = client.post(
        f"/v1/customers/{customer_id}/payment-setup",
        json={"payment_method_id": pm},
        headers=t.headers,
    )
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def sweep(app: Flask, t: TenantCtx) -> SweepSummary:
    with app.app_context():
        return sweep_tenant(db.engine, t.tenant_id, now=utcnow())


def payments(client: FlaskClient, t: TenantCtx, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in {"limit": "100", **query}.items())
    resp = client.get(f"/v1/payments?{qs}", headers=t.headers)
    assert resp.status_code == 200, resp.json
    return list(resp.json["data"])


def events_of(client: FlaskClient, t: TenantCtx, type_: str) -> list[dict[str, Any]]:
    data = client.get("/v1/events?limit=100", headers=t.headers).json["data"]
    return [e for e in data if e["type"] == type_]


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def event(type_: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "type": type_,
            "livemode": False,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


def deliver(client: FlaskClient, t: TenantCtx, body: bytes, signature: str | None = None) -> Any:
    return client.post(
        f"/stripe/webhooks/{t.tenant_id}",
        data=body,
        headers={"Stripe-Signature": signature or sign(body), "Content-Type": "application/json"},
    )


def stripe_ready(client: FlaskClient, t: TenantCtx, pm: str = "pm_card_visa") -> str:
    configure(client, t)
    customer_id = make_customer(client, t)
    card(client, t, customer_id, pm)
    return customer_id


def test_sweep_collects_an_open_invoice_once_when_the_card_works(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    customer_id = stripe_ready(client, tenant)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    summary = sweep(app, tenant)
    assert summary.collections == {"succeeded": 1}
    assert get(client, tenant, invoice["id"])["status"] == "paid"
    [payment] = payments(client, tenant)
    assert payment["provider"] == "stripe"
    assert payment["status"] == "succeeded"
    assert payment["amount"] == invoice["gross_amount"]
    assert payment["attempt"] == 1
    intent = stripe_api.payment_intents.retrieve(payment["reference"])
    assert intent.status == "succeeded"
    assert intent.amount == invoice["gross_amount"]
    assert intent.metadata["abowerk_invoice_id"] == invoice["id"]
    assert sweep(app, tenant).collections == {}  # nothing charged twice
    assert len(events_of(client, tenant, "payment.succeeded")) == 1


def test_declined_card_fails_then_a_retry_with_a_new_card_succeeds_when_dunning_retries(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    customer_id = stripe_ready(client, tenant, "pm_card_chargeCustomerFail")
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    assert sweep(app, tenant).collections == {"failed": 1}
    [failed] = payments(client, tenant)
    assert (failed["status"], failed["failure_code"]) == ("failed", "card_declined")
    assert get(client, tenant, invoice["id"])["status"] == "open"
    assert [e["data"]["object"]["id"] for e in events_of(client, tenant, "payment.failed")] == [
        failed["id"]
    ]
    assert sweep(app, tenant).collections == {}  # retries are dunning's, not the sweep's

    card(client, tenant, customer_id, "pm_card_visa")
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, tenant.tenant_id)
        result = attempt_collection(session, invoice["id"], now=utcnow())
        session.commit()
        db.session.remove()
    assert result.status == "succeeded"
    assert get(client, tenant, invoice["id"])["status"] == "paid"
    by_attempt = {p["attempt"]: p["status"] for p in payments(client, tenant)}
    assert by_attempt == {1: "failed", 2: "succeeded"}
    assert standing(client, tenant, invoice["id"])["amount_remaining"] == 0


def test_credit_note_of_a_stripe_paid_invoice_is_refunded_once_when_swept(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    customer_id = stripe_ready(client, tenant)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    sweep(app, tenant)
    resp = client.post(
        "/v1/credit-notes",
        json={"invoice_id": invoice["id"], "reason": "Kündigung"},
        headers=tenant.headers,
    )
    assert resp.status_code == 201, resp.json
    note = resp.json
    assert sweep(app, tenant).refunds == 1
    [refund] = payments(client, tenant, kind="refund")
    assert refund["credit_note_id"] == note["id"]
    assert refund["amount"] == note["gross_amount"] == invoice["gross_amount"]
    assert refund["status"] == "succeeded"
    assert stripe_api.refunds.retrieve(refund["reference"]).amount == note["gross_amount"]
    assert sweep(app, tenant).refunds == 0  # never refunded twice
    # Stripe's own report of that refund books nothing again
    stripe_refund = stripe_api.refunds.retrieve(refund["reference"])
    charge = stripe_api.charges.retrieve(stripe_refund.charge).to_dict()
    charge.setdefault("payment_intent", payments(client, tenant, kind="payment")[0]["reference"])
    assert deliver(client, tenant, event("charge.refunded", charge)).status_code == 200
    assert [r["id"] for r in payments(client, tenant, kind="refund")] == [refund["id"]]
    state = standing(client, tenant, invoice["id"])
    assert (state["amount_due"], state["amount_paid"], state["amount_remaining"]) == (0, 0, 0)
    refunded = events_of(client, tenant, "payment.refunded")
    assert [e["data"]["object"]["id"] for e in refunded] == [refund["id"]]


def test_setup_intent_confirmed_in_the_browser_sets_the_default_card_when_stripe_reports_it(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    resp = client.post(
        f"/v1/customers/{customer_id}/payment-setup", json={}, headers=tenant.headers
    )
    assert resp.status_code == 200, resp.json
    setup = resp.json
    assert setup["status"] == "setup_pending"
    assert setup["setup_intent_id"].startswith("seti_")
    assert setup["client_secret"]
    # what Stripe.js does in the customer's browser
    stripe_api.setup_intents.confirm(
        setup["setup_intent_id"],
        params={"payment_method": "pm_card_visa", "client_secret": setup["client_secret"]},
    )
    intent = stripe_api.setup_intents.retrieve(setup["setup_intent_id"])
    assert intent.status == "succeeded"
    delivered = deliver(client, tenant, event("setup_intent.succeeded", intent.to_dict()))
    assert delivered.status_code == 200, delivered.json
    assert delivered.json["outcome"] == "processed"
    ready = client.get(f"/v1/customers/{customer_id}/payment-setup", headers=tenant.headers).json
    assert ready["status"] == "ready"
    assert ready["default_payment_method_id"] == intent.payment_method
    assert ready["card_last4"] == "4242"
    assert ready["client_secret"] is None
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    assert sweep(app, tenant).collections == {"succeeded": 1}
    assert get(client, tenant, invoice["id"])["status"] == "paid"


def _lost_charge(
    stripe_api: Any, client: FlaskClient, t: TenantCtx, invoice: dict[str, Any]
) -> Any:
    """A PaymentIntent our charge created whose own record was lost (a crash after Stripe
    answered): only its webhook can tell us."""
    setup = client.get(
        f"/v1/customers/{invoice['customer_id']}/payment-setup", headers=t.headers
    ).json
    return stripe_api.payment_intents.create(
        params={
            "amount": invoice["gross_amount"],
            "currency": "eur",
            "customer": setup["stripe_customer_id"],
            "payment_method": "pm_card_visa",
            "off_session": True,
            "confirm": True,
            "metadata": {"abowerk_invoice_id": invoice["id"], "abowerk_attempt": "1"},
        }
    )


def test_replayed_event_is_absorbed_without_booking_twice_when_delivered_again(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    customer_id = stripe_ready(client, tenant)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    intent = _lost_charge(stripe_api, client, tenant, invoice)
    body = event("payment_intent.succeeded", intent.to_dict(), "evt_replayed_1")
    first = deliver(client, tenant, body)
    assert first.status_code == 200, first.json
    assert (first.json["outcome"], first.json["replayed"]) == ("processed", False)
    again = deliver(client, tenant, body)
    assert again.status_code == 200
    assert again.json["replayed"] is True
    # the same PaymentIntent in a new event (Stripe retries with new ids too): still once
    other = deliver(client, tenant, event("payment_intent.succeeded", intent.to_dict()))
    assert other.status_code == 200
    [payment] = payments(client, tenant)
    assert (payment["reference"], payment["status"]) == (intent.id, "succeeded")
    assert get(client, tenant, invoice["id"])["status"] == "paid"
    assert standing(client, tenant, invoice["id"])["amount_paid"] == invoice["gross_amount"]
    assert len(events_of(client, tenant, "invoice.paid")) == 1
    assert sweep(app, tenant).collections == {}  # the sweep sees the attempt: no new charge


def test_payment_for_a_void_invoice_is_kept_as_owed_back_and_the_invoice_stays_void_when_reported(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    customer_id = stripe_ready(client, tenant)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    voided = client.post(f"/v1/invoices/{invoice['id']}/void", json={}, headers=tenant.headers)
    assert voided.status_code == 200
    intent = _lost_charge(stripe_api, client, tenant, invoice)
    resp = deliver(client, tenant, event("payment_intent.succeeded", intent.to_dict()))
    assert resp.status_code == 200, resp.json
    [payment] = payments(client, tenant)
    assert (payment["status"], payment["needs_refund"]) == ("succeeded", True)
    assert get(client, tenant, invoice["id"])["status"] == "void"
    assert standing(client, tenant, invoice["id"])["amount_paid"] == 0
    assert (
        client.get(f"/v1/customers/{customer_id}/balance", headers=tenant.headers).json["balances"]
        == []
    )
    # the tenant gives it back in Stripe's dashboard; Stripe reports the refunded charge
    refund = stripe_api.refunds.create(params={"payment_intent": intent.id})
    charge = stripe_api.charges.retrieve(refund.charge).to_dict()
    charge.setdefault("payment_intent", intent.id)
    resp = deliver(client, tenant, event("charge.refunded", charge))
    assert resp.status_code == 200, resp.json
    [back] = payments(client, tenant, kind="refund")
    assert (back["amount"], back["refunded_payment_id"], back["needs_refund"]) == (
        invoice["gross_amount"],
        payment["id"],
        True,
    )
    assert standing(client, tenant, invoice["id"])["amount_paid"] == 0
    assert get(client, tenant, invoice["id"])["status"] == "void"


@pytest.mark.parametrize(
    ("signature", "detail"),
    [
        (lambda body: sign(body, "whsec_wrong_secret"), "wrong secret"),
        (lambda body: sign(body + b" "), "other body"),
        (lambda body: sign(body, at=int(time.time()) - 301), "stale"),
        (lambda body: "t=1,v1=", "garbage"),
    ],
    ids=["wrong-secret", "body-changed", "stale-timestamp", "garbage"],
)
def test_bad_signature_is_a_400_problem_and_changes_nothing_when_webhook_arrives(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any, signature: Any, detail: str
) -> None:
    customer_id = stripe_ready(client, tenant)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    intent = _lost_charge(stripe_api, client, tenant, invoice)
    body = event("payment_intent.succeeded", intent.to_dict())
    resp = deliver(client, tenant, body, signature(body))
    assert resp.status_code == 400, detail
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == "invalid_stripe_signature"
    assert payments(client, tenant) == []
    assert get(client, tenant, invoice["id"])["status"] == "open"
    missing = client.post(f"/stripe/webhooks/{tenant.tenant_id}", data=body)
    assert (missing.status_code, missing.json["code"]) == (400, "invalid_stripe_signature")


def test_unknown_event_type_is_acknowledged_and_ignored_when_delivered(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    resp = deliver(client, tenant, event("customer.tax_id.created", {"id": "txi_1"}))
    assert resp.status_code == 200
    assert resp.json["outcome"] == "ignored"


def test_webhook_for_a_tenant_without_stripe_is_not_found_when_delivered(
    client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    configure(client, other_tenant)
    body = event("payment_intent.succeeded", {"id": "pi_x"})
    resp = deliver(client, tenant, body)
    assert (resp.status_code, resp.json["code"]) == (404, "stripe_webhook_unknown_tenant")
    # the other tenant's secret does not open this tenant's address either
    resp = client.post(
        "/stripe/webhooks/ten_doesnotexist", data=body, headers={"Stripe-Signature": sign(body)}
    )
    assert resp.status_code == 404


def test_stripe_key_is_encrypted_at_rest_and_never_returned_when_configured(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    key = "sk_test_" + "k" * 20 + "WXYZ"
    resp = client.put(
        "/v1/payment-settings",
        json={
            "provider": "stripe",
            "stripe_secret_key": key,
            "stripe_webhook_secret": WEBHOOK_SECRET,
        },
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["stripe_key_last4"] == "WXYZ"
    assert resp.json["stripe_webhook_url"].endswith(f"/stripe/webhooks/{tenant.tenant_id}")
    assert key not in json.dumps(client.get("/v1/payment-settings", headers=tenant.headers).json)
    with owner_engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT stripe_secret_key_encrypted, stripe_webhook_secret_encrypted "
                    "FROM payment_settings WHERE tenant_id = :t"),
            {"t": tenant.tenant_id},
        ).one()  # fmt: skip
    assert key not in stored[0]
    assert WEBHOOK_SECRET not in stored[1]
    live = client.put(
        "/v1/payment-settings",
        json={"stripe_secret_key": "sk_live_" + "x" * 20},
        headers=tenant.headers,
    )
    assert (live.status_code, live.json["code"]) == (422, "stripe_key_invalid")


def test_dunning_retry_collects_through_stripe_when_the_customer_changed_the_card(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    from datetime import timedelta

    from billing.dunning.jobs import run_due_retries
    from billing.dunning.services import default_collector

    customer_id = stripe_ready(client, tenant, "pm_card_chargeCustomerFail")
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    assert sweep(app, tenant).collections == {"failed": 1}  # dunning opens its case
    card(client, tenant, customer_id, "pm_card_visa")
    collector = default_collector()  # what the worker's dunning task uses: ours
    assert collector is attempt_collection
    with app.app_context():
        ran = run_due_retries(
            db.engine, tenant.tenant_id, now=utcnow() + timedelta(days=2), collector=collector
        )
    assert ran == {"succeeded": 1}
    assert get(client, tenant, invoice["id"])["status"] == "paid"
    assert {p["attempt"]: p["status"] for p in payments(client, tenant)} == {
        1: "failed",
        2: "succeeded",
    }
    assert len(events_of(client, tenant, "dunning.recovered")) == 1


def test_charge_that_needs_authentication_stays_pending_until_stripe_reports_the_failure(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    three_ds = stripe_api.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000002760003184", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    card(client, tenant, customer_id, three_ds.id)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    assert sweep(app, tenant).collections == {"pending": 1}
    [pending] = payments(client, tenant)
    assert pending["status"] == "pending"
    assert sweep(app, tenant).collections == {}  # no second charge while one is pending
    intent = stripe_api.payment_intents.retrieve(pending["reference"]).to_dict()
    intent["last_payment_error"] = {
        "code": "authentication_required",
        "message": "The customer did not authenticate.",
    }
    resp = deliver(client, tenant, event("payment_intent.payment_failed", intent))
    assert resp.status_code == 200, resp.json
    [failed] = payments(client, tenant)
    assert (failed["id"], failed["status"], failed["failure_code"]) == (
        pending["id"],
        "failed",
        "authentication_required",
    )
    assert get(client, tenant, invoice["id"])["status"] == "open"
    assert len(events_of(client, tenant, "payment.failed")) == 1


@POSTGRES_ONLY
def test_two_sweeps_at_once_charge_an_invoice_once_when_run_concurrently(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    customer_id = stripe_ready(client, tenant)
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    start = threading.Barrier(2)
    summaries: list[SweepSummary] = []

    def run() -> None:
        with app.app_context():
            start.wait()
            summaries.append(sweep_tenant(db.engine, tenant.tenant_id, now=utcnow()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(summaries) == 2
    assert sum(s.collections.get("succeeded", 0) for s in summaries) == 1
    assert all(s.errors == 0 for s in summaries)
    [payment] = payments(client, tenant)
    assert payment["status"] == "succeeded"
    assert get(client, tenant, invoice["id"])["status"] == "paid"
    assert len(events_of(client, tenant, "payment.succeeded")) == 1
