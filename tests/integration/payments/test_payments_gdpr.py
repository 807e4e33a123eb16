"""GDPR for payments with the real provider (`compliance.providers.payments`) and a real
localstripe: the access export lists the person's payments, an erasure keeps the bookkeeping
records but tokenises their free text, erases the card summary and deletes the Stripe
customer at Stripe (recorded), and a Stripe that was down is retried by
`abowerk gdpr reapply-erasures`."""

from __future__ import annotations

import io
import json
import socket
import zipfile
from typing import Any

import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.payments import runtime
from tests.api.test_gdpr_exports import download, fulfil
from tests.api.test_gdpr_requests import verified_request
from tests.api.test_invoices import make_finalized
from tests.conftest import CUSTOMER, TenantCtx
from tests.integration.payments.test_stripe_flows import card, configure, sweep


def _person_with_payments(app: Flask, client: FlaskClient, t: TenantCtx) -> dict[str, Any]:
    configure(client, t)
    resp = client.post("/v1/customers", json=CUSTOMER, headers=t.headers)
    customer_id = resp.json["id"]
    setup = card(client, t, customer_id, "pm_card_visa")
    by_card = make_finalized(client, t, customer_id=customer_id)
    assert sweep(app, t).collections == {"succeeded": 1}
    by_bank = make_finalized(client, t, customer_id=customer_id)
    paid = client.post(
        f"/v1/invoices/{by_bank['id']}/payments",
        json={"amount": 500, "currency": "EUR", "reference": "BANK-GDPR-1",
              "note": f"Überweisung von {CUSTOMER['name']}"},
        headers=t.headers,
    )  # fmt: skip
    assert paid.status_code == 201, paid.json
    return {"customer_id": customer_id, "stripe_id": setup["stripe_customer_id"], "card": by_card}


def test_access_export_lists_the_persons_payments_when_fulfilled(
    app: Flask, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    person = _person_with_payments(app, client, tenant)
    done = fulfil(
        client, tenant, verified_request(client, tenant, "access", person["customer_id"])["id"]
    )
    archive = zipfile.ZipFile(io.BytesIO(download(client, done["download"]["url"]).get_data()))
    exported = json.loads(archive.read("payments.json"))
    by_provider = {p["provider"]: p for p in exported}
    assert by_provider["stripe"]["method"] == "card visa •••• 4242"
    assert by_provider["stripe"]["amount"] == person["card"]["gross_amount"]
    assert by_provider["manual"]["method"] == "bank_transfer"
    assert by_provider["manual"]["note"] == f"Überweisung von {CUSTOMER['name']}"
    assert {p["kind"] for p in exported} == {"payment"}


def test_erasure_keeps_the_bookings_and_deletes_the_stripe_customer_when_the_person_is_erased(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    stripe_api: Any,
    stripe_base: str,
    owner_engine: sa.Engine,
) -> None:
    person = _person_with_payments(app, client, tenant)
    done = fulfil(
        client, tenant, verified_request(client, tenant, "erasure", person["customer_id"])["id"]
    )
    assert done["state"] == "completed"
    assert done["outcome"]["payment_providers"] == [
        {"provider": "stripe", "status": "deleted", "reference": person["stripe_id"], "error": None}
    ]
    assert done["outcome"]["providers"]["payments"] == {
        "card_summary_erased": 1,
        "payment_note_tokenized": 1,
    }
    resp = requests.get(
        f"{stripe_base}/v1/customers/{person['stripe_id']}", auth=("sk_test_abowerk", ""), timeout=5
    )
    assert resp.status_code == 404 or resp.json().get("deleted") is True
    with owner_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT amount_minor, note, provider_ref FROM payments WHERE tenant_id = :t "
                    "ORDER BY provider"),
            {"t": tenant.tenant_id},
        ).all()  # fmt: skip
        setups = conn.execute(
            sa.text("SELECT count(*) FROM payment_customers WHERE tenant_id = :t"),
            {"t": tenant.tenant_id},
        ).scalar_one()
    assert [r.amount_minor for r in rows] == [500, person["card"]["gross_amount"]]  # kept
    assert rows[0].note.startswith("erased-")
    assert CUSTOMER["name"] not in str(rows)
    assert setups == 0


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_stripe_down_is_recorded_and_the_deletion_retried_when_erasures_are_reapplied(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    stripe_api: Any,
    stripe_base: str,
    owner_engine: sa.Engine,
) -> None:
    person = _person_with_payments(app, client, tenant)
    with runtime.overridden(stripe_api_base=_closed_port()):
        done = fulfil(
            client, tenant, verified_request(client, tenant, "erasure", person["customer_id"])["id"]
        )
    assert done["state"] == "completed"
    assert done["outcome"]["payment_providers"] == [
        {"provider": "stripe", "status": "failed", "reference": None,
         "error": "payment_provider_unavailable"}
    ]  # fmt: skip
    with owner_engine.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT external_customer_id FROM payment_customers WHERE tenant_id = :t"),
            {"t": tenant.tenant_id},
        ).scalars().all()  # fmt: skip
    assert kept == [person["stripe_id"]]  # kept for the retry
    result = app.test_cli_runner().invoke(
        args=["gdpr", "reapply-erasures", "--tenant", tenant.tenant_id]
    )
    assert result.exit_code == 0, result.output
    with owner_engine.connect() as conn:
        left = conn.execute(
            sa.text("SELECT count(*) FROM payment_customers WHERE tenant_id = :t"),
            {"t": tenant.tenant_id},
        ).scalar_one()
    assert left == 0
