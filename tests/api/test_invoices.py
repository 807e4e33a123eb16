"""Invoices API: drafts, finalization (numbers, frozen content), status, bad input that
changes nothing, immutability through the API, the ORM and PostgreSQL, webhooks.

The factories at the top (`make_customer`, `make_draft`, `make_finalized`,
`make_credit_note`) are imported by other test modules (documents, cross-tenant).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.invoices.errors import InvoiceImmutableError
from billing.invoices.models import Invoice, InvoiceLine, InvoiceNumberSkip
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_seller_profile import put_profile
from tests.conftest import POSTGRES_ONLY, TenantCtx
from tests.support.receiver import Receiver, start_receiver

CHECKED = {"status": "valid", "checked_at": "2026-11-02T09:00:00Z"}

CUSTOMERS: dict[str, dict[str, Any]] = {
    "de_business": {
        "email": "einkauf@nordlicht.example",
        "name": "Nordlicht Handels AG",
        "address": {
            "line1": "Am Sandtorkai 50",
            "postal_code": "20457",
            "city": "Hamburg",
            "country": "DE",
        },
        "is_business": True,
        "vat_id": "DE136695976",
        "vat_id_check": CHECKED,
    },
    "de_consumer": {
        "email": "erika@example.de",
        "name": "Erika Mustermann",
        "address": {
            "line1": "Hauptstraße 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
    },
    "de_no_address": {
        "email": "max@example.de",
        "name": "Max Beispiel",
        "address": {"country": "DE"},
    },
    "fr_consumer": {
        "email": "camille@example.fr",
        "name": "Camille Martin",
        "address": {
            "line1": "12 rue des Lilas",
            "postal_code": "69003",
            "city": "Lyon",
            "country": "FR",
        },
    },
    "at_business": {
        "email": "office@alpenblick.example",
        "name": "Alpenblick Software GmbH",
        "address": {
            "line1": "Maria-Theresien-Straße 21",
            "postal_code": "6020",
            "city": "Innsbruck",
            "country": "AT",
        },
        "is_business": True,
        "vat_id": "ATU13585627",
        "vat_id_check": CHECKED,
    },
    "ch_business": {
        "email": "info@bergsicht.example",
        "name": "Bergsicht AG",
        "address": {
            "line1": "Bahnhofstrasse 10",
            "postal_code": "8001",
            "city": "Zürich",
            "country": "CH",
        },
        "is_business": True,
    },
}

LINE = {
    "description": "Abo „Team“, monatlich",
    "quantity": "1",
    "unit_amount": 19900,
    "period": {"start": "2026-11-01", "end": "2026-11-30"},
}
SEATS = {"description": "Zusätzliche Nutzer", "quantity": "5", "unit_amount": 999}


def make_customer(client: FlaskClient, t: TenantCtx, kind: str = "de_business") -> str:
    resp = client.post("/v1/customers", json=CUSTOMERS[kind], headers=t.headers)
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def make_draft(
    client: FlaskClient,
    t: TenantCtx,
    *,
    customer: str = "de_business",
    customer_id: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    profile: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    if profile and client.get("/v1/seller_profile", headers=t.headers).status_code == 404:
        put_profile(client, t)
    body = {
        "customer_id": customer_id or make_customer(client, t, customer),
        "lines": copy.deepcopy([LINE, SEATS] if lines is None else lines),
        **fields,
    }
    resp = client.post("/v1/invoices", json=body, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def finalize(client: FlaskClient, t: TenantCtx, invoice_id: str) -> dict[str, Any]:
    resp = client.post(f"/v1/invoices/{invoice_id}/finalize", json={}, headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def make_finalized(client: FlaskClient, t: TenantCtx, **fields: Any) -> dict[str, Any]:
    return finalize(client, t, make_draft(client, t, **fields)["id"])


def make_credit_note(client: FlaskClient, t: TenantCtx) -> dict[str, Any]:
    invoice = make_finalized(client, t)
    resp = client.post("/v1/credit-notes", json={"invoice_id": invoice["id"]}, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def make_line(client: FlaskClient, t: TenantCtx) -> str:
    """A line id of another draft (for routes that take a line id)."""
    return str(make_draft(client, t)["lines"][0]["id"])


def get(client: FlaskClient, t: TenantCtx, invoice_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/invoices/{invoice_id}", headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def this_year() -> int:
    return utcnow().year


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec, server = start_receiver()
    yield rec
    server.shutdown()
    server.server_close()


# --- drafts -------------------------------------------------------------------------------


def test_draft_has_lines_and_no_number_when_created(client: FlaskClient, tenant: TenantCtx) -> None:
    draft = make_draft(client, tenant)
    assert draft["object"] == "invoice"
    assert draft["status"] == "draft"
    assert draft["number"] is None
    assert draft["currency"] == "EUR"
    assert [line["amount"] for line in draft["lines"]] == [19900, 4995]
    assert draft["subtotal"] == 24895
    assert draft["lines"][0]["tax"] is None  # decided at finalization
    assert draft["lines"][0]["period"] == {"start": "2026-11-01", "end": "2026-11-30"}
    assert draft["net_amount"] is None


def test_lines_are_added_and_removed_when_invoice_is_a_draft(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant, lines=[])
    added = client.post(
        f"/v1/invoices/{draft['id']}/lines",
        json={"description": "Beratung", "quantity": "1.5", "unit_amount": 12000},
        headers=tenant.headers,
    )
    assert added.status_code == 201, added.json
    line = added.json["lines"][0]
    assert (line["quantity"], line["amount"], line["position"]) == ("1.5", 18000, 1)
    removed = client.delete(
        f"/v1/invoices/{draft['id']}/lines/{line['id']}", headers=tenant.headers
    )
    assert removed.status_code == 200
    assert removed.json["lines"] == []
    again = client.delete(f"/v1/invoices/{draft['id']}/lines/{line['id']}", headers=tenant.headers)
    assert again.status_code == 404
    assert again.json["code"] == "invoice_line_not_found"


def test_draft_is_refused_when_seller_profile_is_missing(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    customer_id = make_customer(client, tenant)
    resp = client.post(
        "/v1/invoices", json={"customer_id": customer_id, "lines": [LINE]}, headers=tenant.headers
    )
    assert resp.status_code == 409
    assert resp.json["code"] == "seller_profile_required"


@pytest.mark.parametrize(
    "line",
    [
        {**LINE, "quantity": "0"},
        {**LINE, "quantity": "1.00001"},
        {**LINE, "unit_amount": -1},
        {**LINE, "unit_amount": 1.5},
        {**LINE, "period": {"start": "2026-11-30", "end": "2026-11-01"}},
        {**LINE, "description": ""},
    ],
)
def test_line_is_refused_when_invalid(
    client: FlaskClient, tenant: TenantCtx, line: dict[str, Any]
) -> None:
    draft = make_draft(client, tenant)
    resp = client.post(f"/v1/invoices/{draft['id']}/lines", json=line, headers=tenant.headers)
    assert resp.status_code == 422
    assert get(client, tenant, draft["id"])["lines"] == draft["lines"]


def test_currency_not_accepted_is_refused_when_drafting(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant, accepted_currencies=["EUR"])
    customer_id = make_customer(client, tenant)
    resp = client.post(
        "/v1/invoices",
        json={"customer_id": customer_id, "currency": "USD", "lines": [LINE]},
        headers=tenant.headers,
    )
    assert resp.status_code == 422
    assert resp.json["code"] == "currency_not_accepted"
    assert "currency" in resp.json["errors"]
    assert client.get("/v1/invoices", headers=tenant.headers).json["data"] == []


def test_currency_no_longer_accepted_is_refused_when_finalizing(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant, currency="USD", supplied_on="2026-10-15")
    put_profile(client, tenant, accepted_currencies=["EUR"])
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 422
    assert resp.json["code"] == "currency_not_accepted"
    assert get(client, tenant, draft["id"])["status"] == "draft"


# --- finalization -------------------------------------------------------------------------


def test_finalized_invoice_has_number_totals_and_tax_when_finalized(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    year = this_year()
    assert invoice["status"] == "open"
    assert invoice["number"] == f"TEST-RE-{year}-00001"  # test mode counts on its own
    assert (invoice["net_amount"], invoice["vat_amount"], invoice["gross_amount"]) == (
        24895,
        4730,  # 248.95 × 19 % = 47.3005 on the summed nets (BR-CO-17)
        29625,
    )
    assert invoice["tax_groups"] == [
        {
            "category": "S",
            "rate": "19",
            "treatment": "domestic",
            "taxing_country": "DE",
            "taxable_amount": 24895,
            "vat_amount": 4730,
            "vat_amount_eur": None,
            "exemption_reason_code": None,
            "exemption_reason": None,
        }
    ]
    assert {line["tax"]["treatment"] for line in invoice["lines"]} == {"domestic"}
    issued = date.fromisoformat(invoice["issued_on"])
    assert invoice["supplied_on"] == invoice["issued_on"]
    assert (date.fromisoformat(invoice["due_on"]) - issued).days == 14
    assert invoice["retention_ends_on"] == f"{issued.year + 8}-12-31"
    assert len(invoice["content_sha256"]) == 64


def test_numbers_are_consecutive_when_invoices_are_finalized_in_turn(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    year = this_year()
    numbers = [make_finalized(client, tenant)["number"] for _ in range(3)]
    assert numbers == [f"TEST-RE-{year}-0000{i}" for i in (1, 2, 3)]


def test_pattern_without_year_counts_on_when_configured(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant, numbering={"invoice_pattern": "R{seq:03}"})
    assert make_finalized(client, tenant)["number"] == "TEST-R001"
    put_profile(client, tenant, numbering={"invoice_pattern": "R{seq:04}"})  # same bucket
    assert make_finalized(client, tenant)["number"] == "TEST-R0002"


def test_number_collision_is_skipped_with_reason_when_another_bucket_issued_it(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant, numbering={"invoice_pattern": "{year}{seq:02}"})
    year = this_year()
    assert make_finalized(client, tenant)["number"] == f"TEST-{year}01"
    # "{year}0{seq}" renders the same number 1 as "{year}{seq:02}" did
    put_profile(client, tenant, numbering={"invoice_pattern": "{year}0{seq}"})
    assert make_finalized(client, tenant)["number"] == f"TEST-{year}02"
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        skips = db.session.scalars(sa.select(InvoiceNumberSkip)).all()
        assert [(s.number, s.seq, s.reason) for s in skips] == [
            (f"TEST-{year}01", 1, "number_taken")
        ]
        db.session.remove()


def test_nothing_changes_when_finalizing_an_invoice_without_lines(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant, lines=[])
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 422
    assert resp.json["code"] == "invoice_incomplete"
    assert "lines" in resp.json["errors"]
    assert get(client, tenant, draft["id"]) == draft
    # the number was not used up
    assert make_finalized(client, tenant)["number"].endswith("-00001")


def test_nothing_changes_when_customer_lacks_the_address_a_full_invoice_needs(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant, customer="de_no_address")
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 422
    assert resp.json["code"] == "invoice_incomplete"
    assert {"buyer.address.line1", "buyer.address.postal_code", "buyer.address.city"} <= set(
        resp.json["errors"]
    )
    assert get(client, tenant, draft["id"]) == draft
    assert make_finalized(client, tenant)["number"].endswith("-00001")


def test_nothing_changes_when_small_amount_invoice_exceeds_the_limit(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(
        client,
        tenant,
        customer="de_no_address",
        kind="small_amount",
        lines=[{"description": "Add-on", "unit_amount": 25000}],  # 297.50 EUR gross
    )
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 422
    assert resp.json["code"] == "invoice_invalid"
    assert "kind" in resp.json["errors"]  # § 33 UStDV: at most 250 EUR
    assert get(client, tenant, draft["id"]) == draft


def test_nothing_changes_when_no_ecb_rate_exists_yet_for_the_supply_date(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    from datetime import timedelta

    from billing.invoices.exchange import _converter

    after_data = _converter().bounds["USD"].last_date + timedelta(days=30)
    draft = make_draft(client, tenant, currency="USD", supplied_on=after_data.isoformat())
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 503
    assert resp.json["code"] == "exchange_rate_unavailable"
    assert get(client, tenant, draft["id"]) == draft


def test_tax_decision_failure_is_a_problem_when_the_engine_cannot_decide(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant, supplied_on="2010-01-01")  # before the rate table
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 422
    assert resp.json["code"] == "tax_decision_failed"
    assert get(client, tenant, draft["id"]) == draft


def test_finalizing_twice_is_refused_when_already_finalized(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    resp = client.post(f"/v1/invoices/{invoice['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 409
    assert resp.json["code"] == "invoice_not_draft"
    assert get(client, tenant, invoice["id"]) == invoice


def test_finalize_replays_when_retried_with_the_same_idempotency_key(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant)
    headers = {**tenant.headers, "Idempotency-Key": "finalize-1"}
    first = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=headers)
    second = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json == second.json


def test_issue_date_is_the_test_clock_day_when_customer_lives_on_one(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant)
    clock = client.post(
        "/v1/test_clocks", json={"frozen_time": "2027-01-31T23:30:00Z"}, headers=tenant.headers
    ).json
    body = {**CUSTOMERS["de_business"], "test_clock_id": clock["id"]}
    customer_id = client.post("/v1/customers", json=body, headers=tenant.headers).json["id"]
    invoice = make_finalized(client, tenant, customer_id=customer_id)
    assert invoice["issued_on"] == "2027-02-01"  # 00:30 in Berlin
    assert invoice["number"] == "TEST-RE-2027-00001"


def test_invoices_are_listed_with_filters_when_queried(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant)
    final = make_finalized(client, tenant)
    paid = make_finalized(client, tenant)
    client.post(f"/v1/invoices/{paid['id']}/mark_paid", json={}, headers=tenant.headers)

    def ids(query: str) -> list[str]:
        resp = client.get(f"/v1/invoices?{query}", headers=tenant.headers)
        assert resp.status_code == 200, resp.json
        return [i["id"] for i in resp.json["data"]]

    assert ids("") == [paid["id"], final["id"], draft["id"]]
    assert ids("status=draft") == [draft["id"]]
    assert ids("status=paid") == [paid["id"]]
    assert ids(f"customer_id={final['customer_id']}") == [final["id"]]
    issued = final["issued_on"]
    assert ids(f"issued_from={issued}&issued_to={issued}") == [paid["id"], final["id"]]
    assert ids("issued_to=2000-01-01") == []
    assert ids("limit=1")[0] == paid["id"]


# --- status -------------------------------------------------------------------------------


def test_payment_is_recorded_when_marked_paid(client: FlaskClient, tenant: TenantCtx) -> None:
    invoice = make_finalized(client, tenant)
    resp = client.post(
        f"/v1/invoices/{invoice['id']}/mark_paid",
        json={"paid_at": "2026-11-20T10:00:00Z", "note": "Überweisung vom 20.11."},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "paid"
    assert resp.json["paid_at"].startswith("2026-11-20T10:00:00")
    assert resp.json["payment_note"] == "Überweisung vom 20.11."
    assert resp.json["content_sha256"] == invoice["content_sha256"]
    again = client.post(f"/v1/invoices/{invoice['id']}/mark_paid", json={}, headers=tenant.headers)
    assert again.status_code == 409
    assert again.json["code"] == "invalid_invoice_transition"


def test_uncollectible_invoice_can_still_be_paid_when_money_arrives(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    url = f"/v1/invoices/{invoice['id']}"
    assert (
        client.post(f"{url}/mark_uncollectible", json={}, headers=tenant.headers).json["status"]
        == "uncollectible"
    )
    assert client.post(f"{url}/mark_paid", json={}, headers=tenant.headers).json["status"] == "paid"


def test_draft_cannot_be_paid_or_voided_when_not_finalized(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant)
    paid = client.post(f"/v1/invoices/{draft['id']}/mark_paid", json={}, headers=tenant.headers)
    assert (paid.status_code, paid.json["code"]) == (409, "invalid_invoice_transition")
    void = client.post(f"/v1/invoices/{draft['id']}/void", json={}, headers=tenant.headers)
    assert (void.status_code, void.json["code"]) == (409, "invoice_not_finalized")
    pdf = client.get(f"/v1/invoices/{draft['id']}/pdf", headers=tenant.headers)
    assert (pdf.status_code, pdf.json["code"]) == (409, "invoice_not_finalized")


# --- immutability -------------------------------------------------------------------------


def test_api_refuses_to_change_a_finalized_invoice_when_asked(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    url = f"/v1/invoices/{invoice['id']}"
    added = client.post(f"{url}/lines", json=LINE, headers=tenant.headers)
    assert (added.status_code, added.json["code"]) == (409, "invoice_not_draft")
    line_id = invoice["lines"][0]["id"]
    removed = client.delete(f"{url}/lines/{line_id}", headers=tenant.headers)
    assert (removed.status_code, removed.json["code"]) == (409, "invoice_not_draft")
    assert client.patch(url, json={"currency": "USD"}, headers=tenant.headers).status_code == 405
    assert client.delete(url, headers=tenant.headers).status_code == 405
    assert get(client, tenant, invoice["id"]) == invoice


def _load(app: Flask, tenant: TenantCtx, invoice_id: str) -> tuple[Any, Invoice]:
    session = db.session
    tenancy.set_tenant(session, tenant.tenant_id)
    invoice = session.scalars(sa.select(Invoice).where(Invoice.id == invoice_id)).one()
    return session, invoice


@pytest.mark.parametrize(
    "change",
    [
        lambda inv: setattr(inv, "number", "RE-FAKE-1"),
        lambda inv: setattr(inv, "gross_minor", 1),
        lambda inv: setattr(inv, "snapshot_json", b"{}"),
        lambda inv: setattr(inv, "customer_id", "cus_other"),
        lambda inv: setattr(inv, "status", "draft"),
        lambda inv: setattr(inv.lines[0], "unit_amount", 1),
        lambda inv: inv.lines.pop(),
        lambda inv: setattr(inv.tax_groups[0], "vat_minor", 0),
    ],
    ids=["number", "total", "snapshot", "customer", "back_to_draft", "line", "drop_line", "vat"],
)
def test_orm_refuses_to_change_a_finalized_invoice_when_flushed(
    app: Flask, client: FlaskClient, tenant: TenantCtx, change: Any
) -> None:
    invoice = make_finalized(client, tenant)
    with app.app_context():
        session, row = _load(app, tenant, invoice["id"])
        change(row)
        with pytest.raises(InvoiceImmutableError):
            session.flush()
        session.rollback()
        db.session.remove()
    assert get(client, tenant, invoice["id"]) == invoice


def test_orm_refuses_deleting_a_finalized_invoice_or_bulk_updates_when_tried(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    with app.app_context():
        session, row = _load(app, tenant, invoice["id"])
        session.delete(row)
        with pytest.raises(InvoiceImmutableError):
            session.flush()
        session.rollback()
        with pytest.raises(InvoiceImmutableError):
            session.execute(sa.update(Invoice).values(gross_minor=0))
        with pytest.raises(InvoiceImmutableError):
            session.execute(sa.delete(InvoiceLine))
        session.rollback()
        db.session.remove()


def test_orm_allows_status_and_payment_changes_when_finalized(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    with app.app_context():
        session, row = _load(app, tenant, invoice["id"])
        row.status = "paid"
        row.paid_at = utcnow()
        row.payment_note = "bar"
        session.commit()
        db.session.remove()
    assert get(client, tenant, invoice["id"])["status"] == "paid"


@POSTGRES_ONLY
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE invoices SET number = 'RE-FAKE' WHERE status <> 'draft'",
        "UPDATE invoices SET gross_minor = 0 WHERE status <> 'draft'",
        "UPDATE invoices SET status = 'draft' WHERE status <> 'draft'",
        "UPDATE invoices SET snapshot_json = '\\x00' WHERE status <> 'draft'",
        "DELETE FROM invoices WHERE status <> 'draft'",
        "UPDATE invoice_lines SET unit_amount = 1",
        "DELETE FROM invoice_lines",
        "UPDATE invoice_tax_groups SET vat_minor = 0",
        "DELETE FROM invoice_tax_groups",
        "UPDATE invoice_documents SET content = '\\x00'",
    ],
)
@pytest.mark.parametrize("role", ["app", "owner"])
def test_database_refuses_to_change_a_finalized_invoice_when_on_postgres(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    statement: str,
    role: str,
) -> None:
    invoice = make_finalized(client, tenant)
    client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=tenant.headers)
    with app.app_context():
        engine = db.engine if role == "app" else owner_engine
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "SELECT set_config('abowerk.tenant_id', %(t)s, false)", {"t": tenant.tenant_id}
            )
            with pytest.raises(sa.exc.IntegrityError, match=r"finalized|never changed"):
                conn.exec_driver_sql(statement)
            conn.rollback()
    assert get(client, tenant, invoice["id"]) == invoice


@POSTGRES_ONLY
def test_database_allows_payment_columns_when_finalized_on_postgres(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    invoice = make_finalized(client, tenant)
    with owner_engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE invoices SET status = 'paid', paid_at = now(), version = version + 1"
        )
    assert get(client, tenant, invoice["id"])["status"] == "paid"


# --- webhooks -----------------------------------------------------------------------------


def test_invoice_lifecycle_is_announced_when_webhooks_are_subscribed(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    resp = client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "enabled_events": ["invoice.*", "credit_note.*"]},
        headers=tenant.headers,
    )
    assert resp.status_code == 201, resp.json
    paid = make_finalized(client, tenant)
    client.post(f"/v1/invoices/{paid['id']}/mark_paid", json={}, headers=tenant.headers)
    voided = make_finalized(client, tenant)
    client.post(f"/v1/invoices/{voided['id']}/void", json={}, headers=tenant.headers)
    got = [json.loads(r.body) for r in receiver.requests]
    assert [
        (e["type"], e["data"]["object"]["id"]) for e in got if e["type"] != "credit_note.created"
    ] == [
        ("invoice.created", paid["id"]),
        ("invoice.finalized", paid["id"]),
        ("invoice.paid", paid["id"]),
        ("invoice.created", voided["id"]),
        ("invoice.finalized", voided["id"]),
        ("invoice.voided", voided["id"]),
    ]
    finalized = got[1]["data"]["object"]
    assert finalized["number"] == paid["number"]
    assert finalized["gross_amount"] == paid["gross_amount"]
    credit = [e for e in got if e["type"] == "credit_note.created"]
    assert len(credit) == 1
    assert credit[0]["data"]["object"]["invoice_id"] == voided["id"]
    assert got[-1]["data"]["object"]["status"] == "void"


def test_no_event_is_sent_when_finalization_fails(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    draft = make_draft(client, tenant, customer="de_no_address")
    client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "enabled_events": ["invoice.*"]},
        headers=tenant.headers,
    )
    resp = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert resp.status_code == 422
    assert receiver.requests == []
