"""Erasure end to end: what is left after it (only restricted documents), what the retention
sweeper leaves after their retention ends (nothing), refusals that change nothing, payment
providers, MRR reports, and the restore drill with `abowerk gdpr reapply-erasures`.

Invoices are real (`billing.invoices`, through its API) and, beside them, played by a
stand-in with files on disk and an OSS record (`tests.support.gdpr`); payments are real
(`billing.payments`, a bank transfer through its API), and so is the deletion of the person's
Stripe customer (the payments module's deleter against a localstripe process).
"""

from __future__ import annotations

import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.payments import runtime as payments_runtime
from compliance import queries
from compliance.audit import derive_hmac_key, subject_hmac
from compliance.export_schemas import CATEGORIES
from compliance.registry import registry
from saas.app import create_app
from saas.extensions import db
from saas.gdpr.runtime import compliance_config
from saas.gdpr.tasks import sweep_tenant
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.ops.backup import backup, restore
from tests.api.test_gdpr_exports import download, fulfil
from tests.api.test_gdpr_requests import new_customer, verified_request
from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import create_subscription, make_shop
from tests.conftest import CUSTOMER, TenantCtx, make_environ
from tests.integration.payments.test_stripe_flows import card
from tests.integration.payments.test_stripe_flows import configure as configure_stripe
from tests.integration.test_backup import fresh_database  # noqa: F401  (fixture)
from tests.support.gdpr import (
    DocumentStore,
    create_tables,
    drop_tables,
    iter_files,
)
from tests.support.localstripe import running_localstripe

VAT_ID = "DE136695976"
LINE = {"description": "Abo Pro, monatlich", "quantity": "1", "unit_amount": 4900}
IDENTIFIERS = (CUSTOMER["email"], CUSTOMER["name"], CUSTOMER["address"]["line1"], VAT_ID)
OTHER = {
    "email": "max@example.de",
    "name": "Max Muster",
    "address": {"line1": "Nebenweg 2", "postal_code": "20095", "city": "Hamburg", "country": "DE"},
}


@pytest.fixture
def echo_receiver() -> Iterator[str]:
    """A webhook receiver that answers with the body it got, as careless receivers do."""

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stripe_base() -> Iterator[str]:
    with running_localstripe() as base:
        yield base


@pytest.fixture
def stripe(stripe_base: str) -> Iterator[str]:
    """The payments module's Stripe gateways (and so its customer deleter) on localstripe."""
    with payments_runtime.overridden(stripe_api_base=stripe_base):
        yield stripe_base


def stripe_customer_exists(base: str, stripe_id: str) -> bool:
    resp = requests.get(f"{base}/v1/customers/{stripe_id}", auth=("sk_test_x", ""), timeout=10)
    return resp.status_code == 200 and not resp.json().get("deleted")


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def store(app: Flask, owner_engine: sa.Engine, stripe: str) -> Iterator[DocumentStore]:
    create_tables(owner_engine)
    documents = DocumentStore(compliance_config(app).export_dir.parent / "documents")
    with registry.temporarily(documents.provider()):
        yield documents
    drop_tables(owner_engine)


@dataclass
class Scenario:
    tenant: TenantCtx
    customer_id: str
    other_id: str
    clock_id: str
    subscription_id: str
    invoice_id: str
    export_url: str
    stripe_id: str


def _tenant_session(app: Flask, tenant_id: str) -> Any:
    session = db.session
    tenancy.set_tenant(session, tenant_id)
    return session


def _build(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    store: DocumentStore,
    owner_engine: sa.Engine,
    receiver: str,
) -> Scenario:
    """A customer on a test clock with everything that can hold their data: a webhook
    delivery answered with an echo, an idempotent response, a subscription, a real invoice
    (with its PDF and XML), two stand-in documents and a draft with files on disk, a payment,
    an export ZIP. The clock starts in 2017, so that the invoice's retention has ended by the
    real date too when the clock gets there (PostgreSQL's guard checks the real date)."""
    clock = client.post(
        "/v1/test_clocks", json={"frozen_time": "2017-03-10T10:00:00Z"}, headers=tenant.headers
    ).json["id"]
    hook = client.post(
        "/v1/webhook_endpoints", json={"url": receiver, "enabled_events": ["*"]},
        headers=tenant.headers,
    )  # fmt: skip
    assert hook.status_code == 201, hook.json
    customer_id = new_customer(
        client,
        tenant,
        vat_id=VAT_ID,
        external_ref="crm-4711",
        metadata={"note": f"VIP: {CUSTOMER['name']}"},
        test_clock_id=clock,
    )
    other_id = new_customer(client, tenant, **OTHER)
    configure_stripe(client, tenant)
    stripe_id = card(client, tenant, customer_id, "pm_card_visa")["stripe_customer_id"]
    sub = create_subscription(client, tenant, customer_id=customer_id)
    patched = client.patch(
        f"/v1/customers/{customer_id}", json={"locale": "de-DE"},
        headers={**tenant.headers, "Idempotency-Key": "patch-1"},
    )  # fmt: skip
    assert patched.status_code == 200, patched.json
    put_profile(client, tenant)
    draft = client.post(
        "/v1/invoices", json={"customer_id": customer_id, "lines": [LINE]}, headers=tenant.headers
    ).json
    invoice = client.post(f"/v1/invoices/{draft['id']}/finalize", json={}, headers=tenant.headers)
    assert invoice.status_code == 200, invoice.json
    me = {"id": customer_id, **CUSTOMER, "vat_id": VAT_ID}
    with owner_engine.begin() as conn:
        for doc_id, kind in (("doc_inv001", "invoice"), ("doc_oss002", "oss_record")):
            store.add(conn, tenant.tenant_id, me, doc_id=doc_id, kind=kind,
                      issued_on=date(2017, 3, 10))  # fmt: skip
        store.add(conn, tenant.tenant_id, me, doc_id="doc_dra003", kind="draft",
                  issued_on=date(2017, 3, 10))  # fmt: skip
        store.add(conn, tenant.tenant_id, {"id": other_id, **OTHER}, doc_id="doc_inv004",
                  kind="invoice", issued_on=date(2017, 3, 10))  # fmt: skip
    paid = client.post(
        f"/v1/invoices/{invoice.json['id']}/payments",
        json={"amount": 1000, "currency": "EUR", "reference": "BANK-2017-0001",
              "note": f"Überweisung {CUSTOMER['name']}, {CUSTOMER['address']['line1']}"},
        headers=tenant.headers,
    )  # fmt: skip
    assert paid.status_code == 201, paid.json
    access = verified_request(client, tenant, "access", customer_id)
    export = fulfil(client, tenant, access["id"])
    return Scenario(
        tenant, customer_id, other_id, clock, sub["id"], invoice.json["id"],
        export["download"]["url"], stripe_id,
    )  # fmt: skip


def _texts_of_row(row: Any) -> str:
    parts = []
    for value in row:
        if isinstance(value, bytes | memoryview):
            parts.append(bytes(value).decode("utf-8", "ignore"))
        else:
            parts.append(str(value))
    return " ".join(parts).lower()


def _file_text(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return " ".join(archive.read(n).decode("utf-8", "ignore") for n in archive.namelist())
    return path.read_bytes().decode("utf-8", "ignore")


def findings(app: Flask, owner_engine: sa.Engine, tenant_id: str) -> set[str]:
    """Every table row of the tenant and every stored file of the tenant (plus the erasure
    ledger) that contains one of the subject's e-mail, name, street or VAT ID."""
    wanted = [v.lower() for v in IDENTIFIERS]
    found: set[str] = set()
    meta = sa.MetaData()
    meta.reflect(bind=owner_engine)
    with owner_engine.connect() as conn:
        for table in meta.sorted_tables:
            stmt = sa.select(table)
            if "tenant_id" in table.c:
                stmt = stmt.where(table.c.tenant_id == tenant_id)
            elif table.name == "tenants":
                stmt = stmt.where(table.c.id == tenant_id)
            for row in conn.execute(stmt):
                text = _texts_of_row(row)
                if any(w in text for w in wanted):
                    found.add(f"table:{table.name}")
    cfg = compliance_config(app)
    var_dir = cfg.export_dir.parent
    roots = [cfg.export_dir / tenant_id, var_dir / "documents" / tenant_id]
    files = [p for root in roots for p in iter_files(root)]
    ledger = sa.make_url(cfg.ledger.url).database  # type: ignore[attr-defined]
    files.append(Path(ledger))
    for path in (f for f in files if f.exists()):
        if any(w in _file_text(path).lower() for w in wanted):
            found.add(f"file:{path.relative_to(var_dir)}")
    return found


def _erase(client: FlaskClient, scenario: Scenario) -> dict[str, Any]:
    req = verified_request(client, scenario.tenant, "erasure", scenario.customer_id)
    return fulfil(client, scenario.tenant, req["id"])


def test_erasure_leaves_data_only_in_restricted_documents_then_nowhere_when_retention_ends(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    store: DocumentStore,
    owner_engine: sa.Engine,
    echo_receiver: str,
    stripe: str,
) -> None:
    s = _build(app, client, tenant, store, owner_engine, echo_receiver)
    tid = tenant.tenant_id
    before = findings(app, owner_engine, tid)
    assert {"table:customers", "table:events", "table:webhook_attempts",
            "table:idempotency_keys", "table:test_retained_documents",
            "table:payments"} <= before  # fmt: skip
    assert any(f.startswith("file:exports/") for f in before)

    done = _erase(client, s)
    assert done["state"] == "completed"
    outcome = done["outcome"]
    assert outcome["payment_providers"] == [
        {"provider": "stripe", "status": "deleted", "reference": s.stripe_id, "error": None}
    ]
    assert outcome["providers"]["subscriptions"] == {"subscription_canceled": 1}
    assert outcome["providers"]["customers"] == {"customer_tokenized": 1}
    assert outcome["providers"]["stand_in_invoices"] == {"draft_deleted": 1}
    assert outcome["providers"]["gdpr_exports"] == {"export_deleted": 1}
    assert outcome["providers"]["payments"] == {
        "card_summary_erased": 1,
        "payment_note_tokenized": 1,
    }
    assert outcome["providers"]["invoices"] == {}  # the finalized invoice is kept
    assert len(outcome["restrictions"]) == 3
    assert not stripe_customer_exists(stripe, s.stripe_id)

    documents = {f"file:documents/{tid}/doc_{d}.{ext}" for d in ("inv001", "oss002")
                 for ext in ("pdf", "xml")}  # fmt: skip
    kept = {"table:test_retained_documents", "table:invoices", "table:invoice_documents"}
    assert findings(app, owner_engine, tid) == kept | documents

    customer = client.get(f"/v1/customers/{s.customer_id}", headers=tenant.headers).json
    assert customer["email"].startswith("erased-")
    assert customer["email"].endswith("@invalid.example")
    assert customer["name"].startswith("erased-")
    assert customer["address"]["line1"] is None
    assert customer["vat_id"] is None
    assert customer["metadata"] == {}
    other = client.get(f"/v1/customers/{s.other_id}", headers=tenant.headers).json
    assert other["email"] == OTHER["email"]  # nobody else is touched
    sub = client.get(f"/v1/subscriptions/{s.subscription_id}", headers=tenant.headers).json
    assert sub["status"] == "canceled"
    assert download(client, s.export_url).status_code == 409  # the export is gone

    restrictions = client.get(
        f"/v1/gdpr/restrictions?customer_id={s.customer_id}", headers=tenant.headers
    ).json["data"]
    ends = {r["document_id"]: r["retention_ends_on"] for r in restrictions}
    assert ends == {
        "doc_inv001": "2025-12-31",
        "doc_oss002": "2027-12-31",
        s.invoice_id: "2025-12-31",
    }
    assert {r["basis"] for r in restrictions} == {"legal_retention"}
    with app.app_context():
        session = _tenant_session(app, tid)
        assert queries.restricted_document_ids(session, "invoice") == {
            "doc_inv001",
            s.invoice_id,
        }
        db.session.remove()

    audit = client.get(
        f"/v1/gdpr/audit_entries?subject_id={s.customer_id}&limit=100", headers=tenant.headers
    ).json["data"]
    erased_entry = next(a for a in audit if a["action"] == "gdpr.erasure.completed")
    assert all(a["redacted_at"] is not None for a in audit if a["at"] < erased_entry["at"])
    with owner_engine.connect() as conn:
        hmacs = set(
            conn.execute(
                sa.text("SELECT subject_hmac FROM audit_entries WHERE action = :a"),
                {"a": "gdpr.erasure.completed"},
            ).scalars()
        )
    key = derive_hmac_key("test-secret-key-not-for-production")
    assert hmacs == {subject_hmac(key, CUSTOMER["email"])}
    entries = compliance_config(app).ledger.entries(tid)
    assert [(e.customer_id, e.request_id) for e in entries] == [(s.customer_id, done["id"])]

    # the retention ends on the customer's test clock; a legal hold keeps the invoice
    invoice_restriction = next(r for r in restrictions if r["document_id"] == "doc_inv001")
    hold = client.post(
        f"/v1/gdpr/restrictions/{invoice_restriction['id']}/legal_hold",
        json={"reason": "tax audit 2026 pending"}, headers=tenant.headers,
    )  # fmt: skip
    assert hold.status_code == 200, hold.json
    advanced = client.post(
        f"/v1/test_clocks/{s.clock_id}/advance", json={"frozen_time": "2028-01-02T00:00:00Z"},
        headers=tenant.headers,
    )  # fmt: skip
    assert advanced.status_code == 200, advanced.json
    with app.app_context():
        report = sweep_tenant(db.engine, compliance_config(app), tid, now=utcnow())
    assert (report.documents_redacted, report.on_legal_hold) == (2, 1)  # OSS record, invoice
    left = findings(app, owner_engine, tid)
    assert left == {"table:test_retained_documents"} | {
        f"file:documents/{tid}/doc_inv001.{ext}" for ext in ("pdf", "xml")
    }
    release = client.post(
        f"/v1/gdpr/restrictions/{invoice_restriction['id']}/release_legal_hold",
        json={}, headers=tenant.headers,
    )  # fmt: skip
    assert release.status_code == 200
    with app.app_context():
        report = sweep_tenant(db.engine, compliance_config(app), tid, now=utcnow())
    assert report.documents_redacted == 1
    assert findings(app, owner_engine, tid) == set()
    # the documents stay hidden: redacted, still restricted
    after = client.get(f"/v1/gdpr/restrictions/{invoice_restriction['id']}",
                       headers=tenant.headers).json  # fmt: skip
    assert after["redacted_at"] is not None
    assert after["lifted_at"] is None
    gone = client.get(f"/v1/invoices/{s.invoice_id}", headers=tenant.headers)
    assert gone.status_code == 404  # deleted once its retention ended


def _table_checksums(owner_engine: sa.Engine, tenant_id: str) -> dict[str, list[str]]:
    meta = sa.MetaData()
    meta.reflect(bind=owner_engine)
    out: dict[str, list[str]] = {}
    with owner_engine.connect() as conn:
        for table in meta.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            rows = conn.execute(sa.select(table).where(table.c.tenant_id == tenant_id))
            out[table.name] = sorted(_texts_of_row(r) for r in rows)
    return out


def test_second_erasure_is_refused_and_changes_nothing_when_customer_is_erased(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    store: DocumentStore,
    owner_engine: sa.Engine,
    echo_receiver: str,
) -> None:
    s = _build(app, client, tenant, store, owner_engine, echo_receiver)
    pending = verified_request(client, tenant, "erasure", s.customer_id)  # asked twice
    _erase(client, s)
    snapshot = _table_checksums(owner_engine, tenant.tenant_id)
    again = client.post(
        "/v1/gdpr/requests", json={"customer_id": s.customer_id, "kind": "erasure"},
        headers=tenant.headers,
    )  # fmt: skip
    assert again.status_code == 409
    assert again.json["code"] == "customer_already_erased"
    late = client.post(f"/v1/gdpr/requests/{pending['id']}/fulfil", json={},
                       headers=tenant.headers)  # fmt: skip
    assert late.status_code == 409
    assert late.json["code"] == "customer_already_erased"
    assert _table_checksums(owner_engine, tenant.tenant_id) == snapshot
    assert len(compliance_config(app).ledger.entries(tenant.tenant_id)) == 1


def test_export_holds_every_category_with_invoice_files_when_customer_has_everything(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    store: DocumentStore,
    owner_engine: sa.Engine,
    echo_receiver: str,
) -> None:
    s = _build(app, client, tenant, store, owner_engine, echo_receiver)
    resp = download(client, s.export_url)
    assert resp.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(resp.get_data()))
    manifest = json.loads(archive.read("manifest.json"))
    counts = {c["name"]: c["records"] for c in manifest["categories"]}
    assert [c.name for c in CATEGORIES] == list(counts)
    for name in (
        "profile",
        "addresses",
        "vat_id_checks",
        "subscriptions",
        "invoices",
        "payments",
        "webhook_deliveries",
        "audit_entries",
        "data_subject_requests",
    ):
        assert counts[name] >= 1, name  # fmt: skip
    assert counts["consents"] == 0  # no consent records exist yet (documented gap)
    for category in CATEGORIES:
        category.schema(many=True).load(json.loads(archive.read(category.file)))
    invoices = json.loads(archive.read("invoices.json"))
    assert {i["invoice_id"] for i in invoices} == {
        "doc_inv001",
        "doc_oss002",
        "doc_dra003",
        s.invoice_id,
    }
    for invoice in invoices:
        real = invoice["invoice_id"] == s.invoice_id
        assert archive.read(invoice["pdf_file"]).startswith(b"%PDF" if real else b"%.pdf")
        assert archive.read(invoice["xml_file"]).startswith(b"<?xml" if real else b"%.xml")
    listed = {f["path"] for f in manifest["files"]}
    assert "invoices/doc_inv001.pdf" in listed
    # other people's data stays out: the other customer's invoice, the tenant's staff
    assert "doc_inv004" not in str(invoices)
    assert OTHER["email"] not in " ".join(
        archive.read(n).decode("utf-8", "ignore") for n in archive.namelist()
    )
    deliveries = json.loads(archive.read("webhook_deliveries.json"))
    assert {d["endpoint_host"] for d in deliveries} == {"127.0.0.1"}
    assert tenant.api_key_id not in archive.read("audit_entries.json").decode()


def test_failed_payment_provider_is_recorded_and_retried_when_erasures_are_reapplied(
    app: Flask, client: FlaskClient, tenant: TenantCtx, store: DocumentStore, stripe: str
) -> None:
    customer_id = new_customer(client, tenant)
    configure_stripe(client, tenant)
    stripe_id = card(client, tenant, customer_id, "pm_card_visa")["stripe_customer_id"]
    req = verified_request(client, tenant, "erasure", customer_id)
    with payments_runtime.overridden(stripe_api_base=_closed_port()):  # Stripe is down
        done = fulfil(client, tenant, req["id"])
    assert done["outcome"]["payment_providers"] == [
        {"provider": "stripe", "status": "failed", "reference": None,
         "error": "payment_provider_unavailable"}
    ]  # fmt: skip
    assert stripe_customer_exists(stripe, stripe_id)
    result = app.test_cli_runner().invoke(
        args=["gdpr", "reapply-erasures", "--tenant", tenant.tenant_id]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reapplied"] == 1
    assert not stripe_customer_exists(stripe, stripe_id)
    with app.app_context():
        session = _tenant_session(app, tenant.tenant_id)
        assert queries.erased_customer_ids(session) == {customer_id}
        db.session.remove()


def test_restriction_request_restricts_the_customer_until_lifted_when_fulfilled(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    req = verified_request(client, tenant, "restriction")
    done = fulfil(client, tenant, req["id"])
    restriction_id = done["outcome"]["restriction_id"]
    with app.app_context():
        session = _tenant_session(app, tenant.tenant_id)
        assert queries.is_subject_restricted(session, req["customer_id"])
        db.session.remove()
    lifted = client.post(
        f"/v1/gdpr/restrictions/{restriction_id}/lift", json={}, headers=tenant.headers
    )
    assert lifted.status_code == 200
    assert lifted.json["lifted_at"] is not None
    with app.app_context():
        session = _tenant_session(app, tenant.tenant_id)
        assert not queries.is_subject_restricted(session, req["customer_id"])
        db.session.remove()


def test_documents_kept_for_tax_law_cannot_be_lifted_when_restricted(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    store: DocumentStore,
    owner_engine: sa.Engine,
    echo_receiver: str,
) -> None:
    s = _build(app, client, tenant, store, owner_engine, echo_receiver)
    restriction_id = _erase(client, s)["outcome"]["restrictions"][0]
    resp = client.post(
        f"/v1/gdpr/restrictions/{restriction_id}/lift", json={}, headers=tenant.headers
    )
    assert resp.status_code == 409
    assert resp.json["code"] == "gdpr_restriction_not_liftable"


def test_longer_retention_setting_moves_the_end_of_kept_documents_when_changed(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    store: DocumentStore,
    owner_engine: sa.Engine,
    echo_receiver: str,
) -> None:
    s = _build(app, client, tenant, store, owner_engine, echo_receiver)
    _erase(client, s)
    client.patch("/v1/gdpr/settings", json={"retention_years": {"invoice": 10}},
                 headers=tenant.headers)  # fmt: skip
    restrictions = client.get("/v1/gdpr/restrictions", headers=tenant.headers).json["data"]
    ends = {r["document_id"]: r["retention_ends_on"] for r in restrictions}
    assert ends == {
        "doc_inv001": "2027-12-31",
        "doc_oss002": "2027-12-31",  # OSS records stay at their own 10 years
        s.invoice_id: "2027-12-31",
    }


def _history(owner_engine: sa.Engine, tenant_id: str) -> list[tuple[Any, ...]]:
    with owner_engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT * FROM subscription_history WHERE tenant_id = :t ORDER BY id"),
                {"t": tenant_id},
            )
        ]


def _reports(client: FlaskClient, t: TenantCtx) -> dict[str, Any]:
    out = {}
    for report in ("mrr", "movements", "churn", "cohorts"):
        resp = client.get(f"/v1/metrics/{report}?from=2026-01&to=2026-06", headers=t.headers)
        assert resp.status_code == 200, resp.json
        out[report] = resp.json
    return out


def test_mrr_reports_are_identical_when_a_customer_is_erased(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    shop = make_shop(client, tenant)  # customers on a test clock from 1 January 2026
    gone = shop.subscribe("pro")
    stays = shop.subscribe("starter")
    upgraded = shop.subscribe("starter")
    shop.advance("2026-02-10T09:00:00Z")
    shop.action(upgraded["id"], "change", {"price_id": shop.prices["business"]["id"]})
    shop.advance("2026-03-15T09:00:00Z")
    assert shop.action(gone["id"], "cancel", {}).status_code == 200
    shop.advance("2026-05-02T09:00:00Z")
    history = _history(owner_engine, tenant.tenant_id)
    reports = _reports(client, tenant)
    mrr = reports["mrr"]["currencies"][0]["months"]
    assert [m["ending_mrr"] for m in mrr][:3] == [8700, 16700, 11800]  # real numbers
    assert stays["status"] == "active"

    req = verified_request(client, tenant, "erasure", gone["customer_id"])
    fulfil(client, tenant, req["id"])
    assert _history(owner_engine, tenant.tenant_id) == history
    assert _reports(client, tenant) == reports


def test_erasing_an_active_subscriber_only_appends_the_cancellation_when_history_is_kept(
    client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    sub = create_subscription(client, tenant)
    history = _history(owner_engine, tenant.tenant_id)
    req = verified_request(client, tenant, "erasure", sub["customer_id"])
    fulfil(client, tenant, req["id"])
    after = _history(owner_engine, tenant.tenant_id)
    assert after[: len(history)] == history  # unchanged, rows only appended
    assert len(after) == len(history) + 1


def test_reapplying_erasures_erases_again_when_a_backup_from_before_is_restored(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    fresh_database: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    sub = create_subscription(client, tenant)
    customer_id = sub["customer_id"]
    dump = backup(owner_engine.url.render_as_string(hide_password=False), tmp_path / "b")

    req = verified_request(client, tenant, "erasure", customer_id)
    fulfil(client, tenant, req["id"])
    erased = client.get(f"/v1/customers/{customer_id}", headers=tenant.headers).json
    assert erased["email"].startswith("erased-")

    restore(fresh_database, dump)
    ledger_url = compliance_config(app).ledger.url  # type: ignore[attr-defined]
    restored = create_app(
        {
            "ENVIRON": make_environ(
                fresh_database, tmp_path / "restored-var", ABOWERK_ERASURE_LEDGER_URL=ledger_url
            )
        }
    )
    try:
        http = restored.test_client()
        back = http.get(f"/v1/customers/{customer_id}", headers=tenant.headers).json
        assert back["email"] == CUSTOMER["email"]  # the restore brought the person back

        result = restored.test_cli_runner().invoke(
            args=["gdpr", "reapply-erasures", "--tenant", tenant.tenant_id]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["reapplied"] == 1
        again = http.get(f"/v1/customers/{customer_id}", headers=tenant.headers).json
        assert again["email"].startswith("erased-")
        assert again["name"].startswith("erased-")
        assert again["address"]["line1"] is None
        assert (
            http.get(f"/v1/subscriptions/{sub['id']}", headers=tenant.headers).json["status"]
            == "canceled"
        )
        refused = http.post(
            "/v1/gdpr/requests", json={"customer_id": customer_id, "kind": "erasure"},
            headers=tenant.headers,
        )  # fmt: skip
        assert refused.json["code"] == "customer_already_erased"
        # running it again is harmless
        second = restored.test_cli_runner().invoke(
            args=["gdpr", "reapply-erasures", "--tenant", tenant.tenant_id]
        )
        assert json.loads(second.output)["reapplied"] == 1
    finally:
        with restored.app_context():
            db.engine.dispose()
