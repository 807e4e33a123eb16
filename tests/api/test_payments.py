"""Manual payments (bank transfers) through the HTTP API, on SQLite and PostgreSQL: partial
payments, payment in full, overpayment onto the credit balance and its use for the next
invoice, a double submission, and payments that must be refused (draft, void, currency,
amount)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.test_invoices import get, make_customer, make_draft, make_finalized
from tests.conftest import TenantCtx


def pay(
    client: FlaskClient,
    t: TenantCtx,
    invoice_id: str,
    amount: int,
    reference: str,
    *,
    status: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    body = {"amount": amount, "currency": "EUR", "reference": reference, **extra}
    resp = client.post(f"/v1/invoices/{invoice_id}/payments", json=body, headers=t.headers)
    assert resp.status_code == status, resp.json
    return dict(resp.json)


def standing(client: FlaskClient, t: TenantCtx, invoice_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/invoices/{invoice_id}/payments", headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def balance(client: FlaskClient, t: TenantCtx, customer_id: str) -> dict[str, int]:
    resp = client.get(f"/v1/customers/{customer_id}/balance", headers=t.headers)
    assert resp.status_code == 200, resp.json
    return {b["currency"]: b["amount"] for b in resp.json["balances"]}


def test_partial_payments_leave_the_invoice_open_until_the_last_pays_it_when_recorded(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    gross = invoice["gross_amount"]
    first = pay(
        client, tenant, invoice["id"], 10000, "BANK-0001", received_at="2026-11-03T08:00:00Z"
    )
    assert first["status"] == "succeeded"
    assert first["kind"] == "payment"
    assert first["provider"] == "manual"
    assert first["received_at"] == "2026-11-03T08:00:00+00:00"
    state = standing(client, tenant, invoice["id"])
    assert (state["status"], state["amount_paid"], state["amount_remaining"]) == (
        "open",
        10000,
        gross - 10000,
    )
    assert get(client, tenant, invoice["id"])["status"] == "open"

    pay(client, tenant, invoice["id"], gross - 10000, "BANK-0002")
    paid = get(client, tenant, invoice["id"])
    assert paid["status"] == "paid"
    assert paid["paid_at"] is not None
    assert standing(client, tenant, invoice["id"])["amount_remaining"] == 0
    assert balance(client, tenant, invoice["customer_id"]) == {}
    listed = client.get(f"/v1/payments?invoice_id={invoice['id']}", headers=tenant.headers).json[
        "data"
    ]
    assert sorted(p["reference"] for p in listed) == ["BANK-0001", "BANK-0002"]


def test_overpayment_pays_the_invoice_and_credits_the_next_when_too_much_arrives(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    customer_id = make_customer(client, tenant)
    first = make_finalized(client, tenant, customer_id=customer_id)
    second = make_finalized(
        client,
        tenant,
        customer_id=customer_id,
        lines=[{"description": "Zusatzmodul", "quantity": "1", "unit_amount": 1000}],
    )
    excess = 1500
    pay(client, tenant, first["id"], first["gross_amount"] + excess, "BANK-OVER")
    assert get(client, tenant, first["id"])["status"] == "paid"
    # the excess went onto the balance and was used for the other open invoice at once
    assert second["gross_amount"] == 1190
    assert get(client, tenant, second["id"])["status"] == "paid"
    assert balance(client, tenant, customer_id) == {"EUR": excess - 1190}
    third = make_finalized(
        client,
        tenant,
        customer_id=customer_id,
        lines=[{"description": "Zusatzmodul", "quantity": "1", "unit_amount": 1000}],
    )
    # credit that arises before an invoice exists is used by the payments sweep
    from billing.payments.tasks import sweep_tenant
    from saas.extensions import db
    from saas.kernel.clock import utcnow

    with client.application.app_context():
        summary = sweep_tenant(db.engine, tenant.tenant_id, now=utcnow())
    assert summary.balance_applied == excess - 1190
    state = standing(client, tenant, third["id"])
    assert (state["amount_paid"], state["amount_remaining"]) == (excess - 1190, 1190 - 310)
    assert balance(client, tenant, customer_id) == {"EUR": 0}


def test_same_bank_reference_is_absorbed_without_booking_twice_when_submitted_again(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    first = pay(client, tenant, invoice["id"], 5000, "BANK-DUP")
    again = pay(client, tenant, invoice["id"], 5000, "BANK-DUP", status=200)
    assert again["id"] == first["id"]
    assert standing(client, tenant, invoice["id"])["amount_paid"] == 5000
    clash = pay(client, tenant, invoice["id"], 7000, "BANK-DUP", status=409)
    assert clash["code"] == "payment_reference_conflict"
    # and with an Idempotency-Key the replay is the stored response itself
    headers = {**tenant.headers, "Idempotency-Key": "pay-once"}
    body = {"amount": 100, "currency": "EUR", "reference": "BANK-IDEM"}
    one = client.post(f"/v1/invoices/{invoice['id']}/payments", json=body, headers=headers)
    two = client.post(f"/v1/invoices/{invoice['id']}/payments", json=body, headers=headers)
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json["id"] == two.json["id"]
    assert standing(client, tenant, invoice["id"])["amount_paid"] == 5100


def test_payment_is_refused_and_nothing_booked_when_invoice_is_void_or_draft(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    voided = client.post(f"/v1/invoices/{invoice['id']}/void", json={}, headers=tenant.headers)
    assert voided.status_code == 200, voided.json
    problem = pay(client, tenant, invoice["id"], 1000, "BANK-VOID", status=409)
    assert problem["code"] == "invoice_not_payable"
    draft = make_draft(client, tenant)
    problem = pay(client, tenant, draft["id"], 1000, "BANK-DRAFT", status=409)
    assert problem["code"] == "invoice_not_payable"
    assert client.get("/v1/payments", headers=tenant.headers).json["data"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": -100}, 422, "validation_failed"),
        ({"amount": 0}, 422, "validation_failed"),
        ({"amount": 10.5}, 422, "validation_failed"),
        ({"currency": "USD"}, 422, "payment_currency_mismatch"),
        ({"currency": "XYZ"}, 422, "validation_failed"),
        ({"reference": ""}, 422, "validation_failed"),
        ({"received_at": "2999-01-01T00:00:00Z"}, 422, "payment_received_in_future"),
        ({"surprise": 1}, 422, "validation_failed"),
    ],
    ids=["negative", "zero", "float", "currency", "unknown-currency", "no-reference",
         "future", "unknown-field"],
)  # fmt: skip
def test_bad_payment_is_refused_with_a_stable_code_when_recorded(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any], status: int, code: str
) -> None:
    invoice = make_finalized(client, tenant)
    problem = pay(
        client, tenant, invoice["id"], **{"amount": 1000, "reference": "B-1", **body}, status=status
    )  # type: ignore[arg-type]
    assert problem["code"] == code
    assert standing(client, tenant, invoice["id"])["data"] == []


def test_unknown_invoice_or_payment_is_not_found_when_addressed(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    assert pay(client, tenant, "inv_missing", 100, "B-2", status=404)["code"] == "invoice_not_found"
    resp = client.get("/v1/payments/pay_missing", headers=tenant.headers)
    assert (resp.status_code, resp.json["code"]) == (404, "payment_not_found")


def test_payment_webhook_event_is_recorded_when_a_payment_succeeds(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    payment = pay(client, tenant, invoice["id"], invoice["gross_amount"], "BANK-EVT")
    events = client.get("/v1/events?limit=100", headers=tenant.headers).json["data"]
    succeeded = [e["data"]["object"] for e in events if e["type"] == "payment.succeeded"]
    assert [(p["id"], p["amount"]) for p in succeeded] == [(payment["id"], payment["amount"])]
    assert "invoice.paid" in {e["type"] for e in events}


def test_payments_need_the_payments_scope_when_read_or_written(
    client: FlaskClient, make_tenant: Any
) -> None:
    t = make_tenant("Scoped GmbH", scopes=["billing:write", "customers:write"])
    invoice = make_finalized(client, t)
    resp = client.post(
        f"/v1/invoices/{invoice['id']}/payments",
        json={"amount": 1, "currency": "EUR", "reference": "X"},
        headers=t.headers,
    )
    assert (resp.status_code, resp.json["code"]) == (403, "insufficient_scope")
    assert client.get("/v1/payments", headers=t.headers).status_code == 403


def test_marking_paid_books_the_remaining_amount_as_a_payment_when_money_arrived_by_hand(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    # mark_paid is a full payment outside abowerk: it must be booked like one, or it would
    # never count as received consideration (§ 19 UStG) nor show in /v1/payments
    invoice = make_finalized(client, tenant)
    gross = invoice["gross_amount"]
    pay(client, tenant, invoice["id"], 1000, "BANK-PART")
    resp = client.post(
        f"/v1/invoices/{invoice['id']}/mark_paid",
        json={"paid_at": "2026-11-20T10:00:00Z", "note": "Barzahlung"},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    assert (resp.json["status"], resp.json["payment_note"]) == ("paid", "Barzahlung")
    listed = client.get(f"/v1/payments?invoice_id={invoice['id']}", headers=tenant.headers).json
    booked = {p["reference"]: p["amount"] for p in listed["data"]}
    assert booked == {"BANK-PART": 1000, f"mark_paid:{invoice['id']}": gross - 1000}
    state = standing(client, tenant, invoice["id"])
    assert (state["amount_paid"], state["amount_remaining"]) == (gross, 0)
