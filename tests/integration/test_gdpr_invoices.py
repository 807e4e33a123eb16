"""Erasure with real invoices (`billing.invoices`): exported with their PDF and XML, kept and
restricted, hidden, and deleted once their retention has ended on the customer's test clock.

The clock starts in 2017, so that the retention (8 years from the end of 2017) has also ended
by the real date, which PostgreSQL's guard of finalized invoices checks.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from compliance import queries
from compliance.export_schemas import CATEGORY_BY_NAME
from compliance.providers.invoices import PROVIDER
from compliance.registry import DocumentRef
from saas.extensions import db
from saas.gdpr.runtime import compliance_config
from saas.gdpr.tasks import sweep_tenant
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_gdpr_exports import download, fulfil
from tests.api.test_gdpr_requests import new_customer, verified_request
from tests.api.test_seller_profile import put_profile
from tests.conftest import POSTGRES_ONLY, TenantCtx
from tests.integration.test_gdpr_erasure import findings

LINE = {"description": "Abo Pro, monatlich", "quantity": "1", "unit_amount": 4900}


def _post(client: FlaskClient, t: TenantCtx, url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(url, json=body, headers=t.headers)
    assert resp.status_code in (200, 201), resp.json
    return dict(resp.json)


def _invoiced_customer(client: FlaskClient, t: TenantCtx) -> tuple[str, str, dict[str, str]]:
    put_profile(client, t)
    clock = _post(client, t, "/v1/test_clocks", {"frozen_time": "2017-03-10T10:00:00Z"})["id"]
    customer_id = new_customer(client, t, test_clock_id=clock)
    draft = _post(client, t, "/v1/invoices", {"customer_id": customer_id, "lines": [LINE]})
    invoice = _post(client, t, f"/v1/invoices/{draft['id']}/finalize", {})
    assert invoice["issued_on"] == "2017-03-10"
    credit_note = _post(client, t, "/v1/credit-notes", {"invoice_id": invoice["id"]})
    second_draft = _post(client, t, "/v1/invoices", {"customer_id": customer_id, "lines": [LINE]})
    ids = {"invoice": invoice["id"], "credit_note": credit_note["id"], "draft": second_draft["id"]}
    return customer_id, clock, ids


def test_invoices_are_exported_kept_restricted_then_deleted_when_retention_ends(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    customer_id, clock, ids = _invoiced_customer(client, tenant)
    access = fulfil(client, tenant, verified_request(client, tenant, "access", customer_id)["id"])
    archive = zipfile.ZipFile(io.BytesIO(download(client, access["download"]["url"]).get_data()))
    exported = json.loads(archive.read("invoices.json"))
    CATEGORY_BY_NAME["invoices"].schema(many=True).load(exported)
    by_id = {i["invoice_id"]: i for i in exported}
    assert set(by_id) == set(ids.values())
    invoice = by_id[ids["invoice"]]
    assert invoice["buyer"]["name"] == "Erika Mustermann"
    assert invoice["retention_ends_on"] == "2025-12-31"
    assert invoice["restricted"] is False
    assert archive.read(invoice["pdf_file"]).startswith(b"%PDF")
    assert b"CrossIndustryInvoice" in archive.read(invoice["xml_file"])
    assert by_id[ids["draft"]]["number"] is None

    erasure = verified_request(client, tenant, "erasure", customer_id)
    outcome = fulfil(client, tenant, erasure["id"])["outcome"]
    assert outcome["providers"]["invoices"] == {"draft_deleted": 1}
    restrictions = client.get(
        f"/v1/gdpr/restrictions?customer_id={customer_id}", headers=tenant.headers
    ).json["data"]
    assert {
        (r["document_id"], r["document_class"], r["retention_ends_on"]) for r in restrictions
    } == {
        (ids["invoice"], "invoice", "2025-12-31"),
        (ids["credit_note"], "credit_note", "2025-12-31"),
    }
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        hidden = queries.restricted_document_ids(db.session, "invoice")
        db.session.remove()
    assert hidden == {ids["invoice"], ids["credit_note"]}
    left = findings(app, owner_engine, tenant.tenant_id)
    assert left, "the kept invoices still hold the buyer"
    assert left <= {"table:invoices", "table:invoice_documents", "table:invoice_lines"}

    _post(client, tenant, f"/v1/test_clocks/{clock}/advance",
          {"frozen_time": "2026-01-02T00:00:00Z"})  # fmt: skip
    cfg = compliance_config(app)
    with app.app_context():
        first = sweep_tenant(db.engine, cfg, tenant.tenant_id, now=utcnow())
        # the invoice waits for the credit note that refers to it: when the sweep reaches
        # the invoice first, it is postponed to the next run
        assert first.documents_redacted + first.postponed == 2
        second = sweep_tenant(db.engine, cfg, tenant.tenant_id, now=utcnow())
        assert first.documents_redacted + second.documents_redacted == 2
        assert second.postponed == 0
    assert findings(app, owner_engine, tenant.tenant_id) == set()
    assert client.get(f"/v1/invoices/{ids['invoice']}", headers=tenant.headers).status_code == 404


def test_kept_invoices_are_not_deleted_when_their_retention_has_not_ended(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    customer_id, clock, ids = _invoiced_customer(client, tenant)
    fulfil(client, tenant, verified_request(client, tenant, "erasure", customer_id)["id"])
    _post(client, tenant, f"/v1/test_clocks/{clock}/advance",
          {"frozen_time": "2025-12-31T12:00:00Z"})  # fmt: skip
    with app.app_context():
        report = sweep_tenant(db.engine, compliance_config(app), tenant.tenant_id, now=utcnow())
    assert report.documents_redacted == 0
    assert client.get(f"/v1/invoices/{ids['invoice']}", headers=tenant.headers).status_code == 200


def test_invoice_waits_for_the_credit_note_that_refers_to_it_when_redacted(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    customer_id, _, ids = _invoiced_customer(client, tenant)
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        ref = DocumentRef("invoice", ids["invoice"], customer_id)
        assert PROVIDER.redact_document is not None
        assert PROVIDER.redact_document(db.session, ref, utcnow()) is None
        db.session.rollback()
        db.session.remove()


@POSTGRES_ONLY
def test_database_refusal_is_counted_and_the_sweep_goes_on_when_real_retention_runs(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant)
    clock = _post(client, tenant, "/v1/test_clocks", {"frozen_time": "2026-03-10T10:00:00Z"})
    customer_id = new_customer(client, tenant, test_clock_id=clock["id"])
    draft = _post(client, tenant, "/v1/invoices", {"customer_id": customer_id, "lines": [LINE]})
    invoice = _post(client, tenant, f"/v1/invoices/{draft['id']}/finalize", {})
    fulfil(client, tenant, verified_request(client, tenant, "erasure", customer_id)["id"])
    _post(client, tenant, f"/v1/test_clocks/{clock['id']}/advance",
          {"frozen_time": "2035-01-02T00:00:00Z"})  # fmt: skip
    with app.app_context():
        report = sweep_tenant(db.engine, compliance_config(app), tenant.tenant_id, now=utcnow())
    # simulated time says the retention ended; PostgreSQL's guard goes by the real date
    assert (report.documents_redacted, report.refused_by_database) == (0, 1)
    assert client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.headers).status_code == 200
    restriction = client.get("/v1/gdpr/restrictions", headers=tenant.headers).json["data"][0]
    assert restriction["redacted_at"] is None  # tried again on the next run


def test_restricted_invoices_leave_normal_listings_when_customer_is_erased(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    customer_id, _, ids = _invoiced_customer(client, tenant)
    invoice_id = ids["invoice"]
    other_invoice = _invoiced_customer(client, tenant)[2]["invoice"]  # stays listed
    listed = {i["id"] for i in client.get("/v1/invoices", headers=tenant.headers).json["data"]}
    assert {invoice_id, other_invoice} <= listed

    erasure = verified_request(client, tenant, "erasure", customer_id)
    fulfil(client, tenant, erasure["id"])

    invoices = {i["id"] for i in client.get("/v1/invoices", headers=tenant.headers).json["data"]}
    notes = {n["id"] for n in client.get("/v1/credit-notes", headers=tenant.headers).json["data"]}
    assert invoice_id not in invoices
    assert other_invoice in invoices
    assert ids["credit_note"] not in notes
    # kept for the bookkeeping and the tax auditor: still retrievable by id, unchanged
    kept = client.get(f"/v1/invoices/{invoice_id}", headers=tenant.headers)
    assert kept.status_code == 200
