"""One finalized invoice per VAT treatment through the API, its PDF and XML downloaded and
checked (Factur-X EN 16931 XSD and Schematron, the PDF embeds the XML); totals agree between
the database, the XML and the snapshot; documents are rendered by the worker after the commit
and served byte-identical, also when the download comes first.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from billing.documents.model import snapshot_from_json
from billing.invoices import rendering
from tests.api.test_invoices import finalize, make_draft
from tests.api.test_seller_profile import put_profile
from tests.conftest import TenantCtx
from tests.unit.documents.en16931 import NS, parse, run_schematron, xsd_errors


@dataclass(frozen=True)
class Case:
    customer: str
    treatment: str
    category: str
    rate: str
    supplied_on: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    kind: str = "invoice"
    unit_amount: int = 4900
    currency: str = "EUR"
    note: str | None = None  # a legal note the PDF must print


KU_SELLER = {
    "legal_name": "Jana Becker Webentwicklung",
    "address": {"line1": "Lindenweg 7", "postal_code": "04109", "city": "Leipzig", "country": "DE"},
    "tax_number": "231/456/78901",
    "vat_id": None,
    "legal_registration_id": None,
    "kleinunternehmer": True,
    "bank": {"iban": "DE02120300000000202051", "account_holder": "Jana Becker"},
}

CASES = {
    "domestic": Case("de_business", "domestic", "S", "19"),
    "oss_destination": Case(
        "fr_consumer",
        "oss_destination",
        "S",
        "20",
        profile={"oss_registered": True, "counters": {"eu_b2c_previous_year": 2_500_000}},
    ),
    "reverse_charge": Case(
        "at_business", "reverse_charge", "AE", "0", note="Steuerschuldnerschaft des Leistungs"
    ),
    "kleinunternehmer_2024": Case(
        "de_consumer",
        "kleinunternehmer_exempt",
        "E",
        "0",
        supplied_on="2024-11-15",
        profile={
            **KU_SELLER,
            "counters": {"turnover_previous_year": 2_100_000, "forecast_current_year": 4_000_000},
        },
        note="wird keine Umsatzsteuer berechnet",
    ),
    "kleinunternehmer_2025": Case(
        "de_consumer",
        "kleinunternehmer_exempt",
        "E",
        "0",
        supplied_on="2025-06-10",
        profile={
            **KU_SELLER,
            "counters": {"turnover_previous_year": 2_000_000, "turnover_current_year": 800_000},
        },
        note="Steuerfreie Leistung nach § 19",
    ),
    "out_of_scope": Case("ch_business", "out_of_scope", "O", "0", note="Nicht im Inland"),
    "small_amount": Case(
        "de_no_address", "domestic", "S", "19", kind="small_amount", unit_amount=2000
    ),
    "foreign_currency": Case(
        "de_business", "domestic", "S", "19", supplied_on="2026-10-15", currency="USD"
    ),
}


def _finalized(client: FlaskClient, tenant: TenantCtx, case: Case) -> dict[str, Any]:
    put_profile(client, tenant, **case.profile)
    fields: dict[str, Any] = {"kind": case.kind, "currency": case.currency}
    if case.supplied_on:
        fields["supplied_on"] = case.supplied_on
    draft = make_draft(
        client,
        tenant,
        customer=case.customer,
        lines=[{"description": "Abo „Solo“, monatlich", "unit_amount": case.unit_amount}],
        **fields,
    )
    return finalize(client, tenant, draft["id"])


def _download(client: FlaskClient, tenant: TenantCtx, url: str) -> bytes:
    resp = client.get(url, headers=tenant.headers)
    assert resp.status_code == 200, resp.get_data()[:500]
    data = resp.get_data()
    assert resp.headers["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    return data


def _amount(xml: Any, path: str) -> Decimal:
    return Decimal(xml.xpath(f"string({path})", namespaces=NS))


def _xml_totals(xml_bytes: bytes, currency: str) -> dict[str, Any]:
    xml = parse(xml_bytes)
    base = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    groups = [
        (
            g.xpath("string(ram:CategoryCode)", namespaces=NS),
            Decimal(g.xpath("string(ram:BasisAmount)", namespaces=NS)),
            Decimal(g.xpath("string(ram:CalculatedAmount)", namespaces=NS)),
        )
        for g in xml.xpath(
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS
        )
    ]
    tax_totals = xml.xpath(f"{base}/ram:TaxTotalAmount", namespaces=NS)
    return {
        "net": _amount(xml, f"{base}/ram:TaxBasisTotalAmount"),
        # BT-110 in the invoice currency (BT-111, the VAT in EUR, is the other one if any)
        "vat": next(Decimal(t.text) for t in tax_totals if t.get("currencyID") == currency),
        "gross": _amount(xml, f"{base}/ram:GrandTotalAmount"),
        "groups": groups,
    }


def _stored_snapshot_json(owner_engine: sa.Engine, invoice_id: str) -> bytes:
    with owner_engine.connect() as conn:
        return bytes(
            conn.execute(
                sa.text("SELECT snapshot_json FROM invoices WHERE id = :id"), {"id": invoice_id}
            ).scalar_one()
        )


@pytest.mark.parametrize("name", list(CASES))
def test_documents_pass_en16931_when_invoice_is_finalized_for_each_treatment(
    client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine, name: str
) -> None:
    case = CASES[name]
    invoice = _finalized(client, tenant, case)
    assert invoice["status"] == "open"
    assert [(t["treatment"], t["category"], t["rate"]) for t in invoice["tax_groups"]] == [
        (case.treatment, case.category, case.rate)
    ]
    xml = _download(client, tenant, f"/v1/invoices/{invoice['id']}/xml")
    pdf = _download(client, tenant, f"/v1/invoices/{invoice['id']}/pdf")
    assert xsd_errors(xml) == []
    report = run_schematron(xml)
    assert report.fired_rules > 0
    assert report.failures == []
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments == {"factur-x.xml": [xml]}
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert invoice["number"] in text
    if case.note:
        assert case.note in " ".join(text.split())
    tree = parse(xml)
    assert tree.xpath("string(//rsm:ExchangedDocument/ram:ID)", namespaces=NS) == invoice["number"]
    assert tree.xpath("string(//rsm:ExchangedDocument/ram:TypeCode)", namespaces=NS) == "380"
    snapshot = snapshot_from_json(_stored_snapshot_json(owner_engine, invoice["id"]))
    assert snapshot.supply_date.isoformat() == invoice["supplied_on"]
    assert snapshot.seller.kleinunternehmer is (case.treatment == "kleinunternehmer_exempt")
    if case.currency != "EUR":
        assert invoice["eur_rate"] is not None
        assert invoice["eur_rate_on"] <= case.supplied_on
        assert invoice["vat_amount_eur"] == invoice["tax_groups"][0]["vat_amount_eur"] > 0


def test_oss_invoice_is_kept_ten_years_when_it_has_an_oss_line(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = _finalized(client, tenant, CASES["oss_destination"])
    year = int(invoice["issued_on"][:4])
    assert invoice["retention_ends_on"] == f"{year + 10}-12-31"  # Art. 369k VAT Directive


def test_documents_are_rendered_after_commit_when_finalized(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    invoice = _finalized(client, tenant, CASES["domestic"])
    with owner_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT format, sha256, snapshot_sha256, size_bytes, renderer "
                "FROM invoice_documents WHERE invoice_id = :id ORDER BY format"
            ),
            {"id": invoice["id"]},
        ).all()
    assert [r.format for r in rows] == ["pdf", "xml"]  # the (inline) worker task ran
    assert {r.snapshot_sha256 for r in rows} == {invoice["content_sha256"]}
    assert all("weasyprint" in r.renderer for r in rows)
    pdf = _download(client, tenant, f"/v1/invoices/{invoice['id']}/pdf")
    assert hashlib.sha256(pdf).hexdigest() == rows[0].sha256
    assert _download(client, tenant, f"/v1/invoices/{invoice['id']}/pdf") == pdf


def test_download_renders_the_same_bytes_when_the_worker_has_not_run(
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _finalized(client, tenant, CASES["domestic"])
    rendered_by_worker = _download(client, tenant, f"/v1/invoices/{first['id']}/pdf")
    monkeypatch.setattr(rendering, "_HOOKS", [])  # the worker is down
    put_profile(client, tenant)
    second = finalize(client, tenant, make_draft(client, tenant)["id"])
    with owner_engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM invoice_documents WHERE invoice_id = :id"),
            {"id": second["id"]},
        ).scalar_one()
    assert count == 0  # finalization itself renders nothing
    on_demand = _download(client, tenant, f"/v1/invoices/{second['id']}/pdf")
    assert _download(client, tenant, f"/v1/invoices/{second['id']}/pdf") == on_demand
    # what the worker would have stored is the same: render the snapshot again directly
    from billing.documents.pdf import render_invoice

    snapshot = snapshot_from_json(_stored_snapshot_json(owner_engine, second["id"]))
    assert render_invoice(snapshot).pdf == on_demand
    assert rendered_by_worker != on_demand  # different invoices, different documents


def test_tampered_snapshot_is_refused_when_rendering(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rendering, "_HOOKS", [])
    invoice = _finalized(client, tenant, CASES["domestic"])
    with owner_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE invoices DISABLE TRIGGER invoices_guard_finalized")
        conn.execute(
            sa.text("UPDATE invoices SET content_sha256 = :h WHERE id = :id"),
            {"h": "0" * 64, "id": invoice["id"]},
        )
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE invoices ENABLE TRIGGER invoices_guard_finalized")
    resp = client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=tenant.headers)
    assert resp.status_code == 409
    assert resp.json["code"] == "invoice_snapshot_corrupt"


_lines = st.lists(
    st.fixed_dictionaries(
        {
            "description": st.sampled_from(["Abo", "Nutzer", "API-Kontingent", "Beratung"]),
            "quantity": st.decimals(
                min_value=Decimal("0.0001"), max_value=Decimal(500), places=4
            ).map(str),
            "unit_amount": st.integers(min_value=0, max_value=250_000),
        }
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=12,
    deadline=None,
    # each example is a real finalization and download (~1 s): report, do not shrink for minutes
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=_lines, customer=st.sampled_from(["de_business", "fr_consumer", "at_business"]))
def test_totals_agree_in_database_xml_and_snapshot_when_lines_vary(
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    lines: list[dict[str, Any]],
    customer: str,
) -> None:
    put_profile(
        client,
        tenant,
        oss_registered=True,
        counters={"eu_b2c_previous_year": 2_500_000},
    )
    invoice = finalize(
        client, tenant, make_draft(client, tenant, customer=customer, lines=lines)["id"]
    )
    snapshot = snapshot_from_json(_stored_snapshot_json(owner_engine, invoice["id"]))
    xml = _xml_totals(_download(client, tenant, f"/v1/invoices/{invoice['id']}/xml"), "EUR")

    def cents(value: Decimal) -> int:
        return int(value * 100)

    totals = snapshot.totals
    assert invoice["net_amount"] == totals.net_minor == cents(xml["net"])
    assert invoice["vat_amount"] == totals.vat_minor == cents(xml["vat"])
    assert invoice["gross_amount"] == totals.gross_minor == cents(xml["gross"])
    assert invoice["gross_amount"] == invoice["net_amount"] + invoice["vat_amount"]
    assert [line["amount"] for line in invoice["lines"]] == list(totals.line_net_minor)
    db_groups = [
        (g["category"], g["taxable_amount"], g["vat_amount"]) for g in invoice["tax_groups"]
    ]
    assert db_groups == [(g.category.value, g.taxable_minor, g.vat_minor) for g in totals.groups]
    assert db_groups == [(c, cents(b), cents(v)) for c, b, v in xml["groups"]]
