"""Credit notes: cancellation (Stornorechnung) and partial correction, own numbers, the
reference to the original, the same tax treatment, never more than what is left, voiding."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader

from tests.api.test_invoices import get, make_draft, make_finalized, this_year
from tests.api.test_seller_profile import put_profile
from tests.conftest import TenantCtx
from tests.unit.documents.en16931 import NS, parse, run_schematron, xsd_errors


def _credit(client: FlaskClient, t: TenantCtx, body: dict[str, Any]) -> Any:
    return client.post("/v1/credit-notes", json=body, headers=t.headers)


def test_cancellation_mirrors_the_invoice_when_no_lines_are_given(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    resp = _credit(client, tenant, {"invoice_id": invoice["id"], "reason": "Doppelt berechnet"})
    assert resp.status_code == 201, resp.json
    note = resp.json
    year = this_year()
    assert note["object"] == "credit_note"
    assert note["number"] == f"TEST-GS-{year}-00001"  # its own series by default
    assert note["type"] == "cancellation"
    assert note["status"] == "issued"
    assert note["invoice_id"] == invoice["id"]
    assert note["reason"] == "Doppelt berechnet"
    assert (note["net_amount"], note["vat_amount"], note["gross_amount"]) == (
        invoice["net_amount"],
        invoice["vat_amount"],
        invoice["gross_amount"],
    )
    assert note["supplied_on"] == invoice["supplied_on"]
    assert [(line["quantity"], line["unit_amount"], line["tax"]) for line in note["lines"]] == [
        (line["quantity"], line["unit_amount"], line["tax"]) for line in invoice["lines"]
    ]
    assert [line["corrects_line_id"] for line in note["lines"]] == [
        line["id"] for line in invoice["lines"]
    ]
    after = get(client, tenant, invoice["id"])
    assert after["amount_credited"] == invoice["gross_amount"]
    assert after["status"] == "open"  # a credit note alone does not void
    assert after["content_sha256"] == invoice["content_sha256"]


def test_credit_note_documents_refer_to_the_original_when_downloaded(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    note = _credit(client, tenant, {"invoice_id": invoice["id"]}).json
    xml = client.get(f"/v1/credit-notes/{note['id']}/xml", headers=tenant.headers).get_data()
    pdf = client.get(f"/v1/credit-notes/{note['id']}/pdf", headers=tenant.headers).get_data()
    assert xsd_errors(xml) == []
    assert run_schematron(xml).failures == []
    tree = parse(xml)
    assert tree.xpath("string(//rsm:ExchangedDocument/ram:TypeCode)", namespaces=NS) == "381"
    ref = "//ram:InvoiceReferencedDocument"
    assert tree.xpath(f"string({ref}/ram:IssuerAssignedID)", namespaces=NS) == invoice["number"]
    issued = tree.xpath(f"string({ref}/ram:FormattedIssueDateTime/*)", namespaces=NS)
    assert issued == invoice["issued_on"].replace("-", "")
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments == {"factur-x.xml": [xml]}
    text = " ".join("\n".join(p.extract_text() for p in reader.pages).split())
    assert "Rechnungskorrektur" in text
    assert invoice["number"] in text


def test_partial_corrections_add_up_until_nothing_is_left_when_issued_in_turn(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)  # 1 × 199.00 and 5 × 9.99
    plan, seats = invoice["lines"]
    two_seats = _credit(
        client,
        tenant,
        {"invoice_id": invoice["id"], "lines": [{"line_id": seats["id"], "quantity": "2"}]},
    )
    assert two_seats.status_code == 201, two_seats.json
    assert two_seats.json["type"] == "correction"
    assert two_seats.json["net_amount"] == 1998
    assert two_seats.json["vat_amount"] == 380  # 19.98 × 19 % = 3.7962
    assert two_seats.json["lines"][0]["tax"] == seats["tax"]
    discount = _credit(
        client,
        tenant,
        {"invoice_id": invoice["id"], "lines": [{"line_id": plan["id"], "amount": 5000}]},
    )
    assert discount.status_code == 201, discount.json
    assert discount.json["lines"][0]["amount"] == 5000
    too_much = _credit(
        client,
        tenant,
        {"invoice_id": invoice["id"], "lines": [{"line_id": seats["id"], "quantity": "4"}]},
    )
    assert too_much.status_code == 422
    assert too_much.json["code"] == "credit_note_exceeds_invoice"
    assert "lines[0]" in too_much.json["errors"]
    rest = _credit(client, tenant, {"invoice_id": invoice["id"]})  # everything that is left
    assert rest.status_code == 201, rest.json
    assert rest.json["type"] == "cancellation"
    assert [line["amount"] for line in rest.json["lines"]] == [14900, 2997]
    numbers = [n["number"] for n in (two_seats.json, discount.json, rest.json)]
    year = this_year()
    assert numbers == [f"TEST-GS-{year}-0000{i}" for i in (1, 2, 3)]
    credited_net = sum(n["net_amount"] for n in (two_seats.json, discount.json, rest.json))
    assert credited_net == invoice["net_amount"]
    again = _credit(client, tenant, {"invoice_id": invoice["id"]})
    assert again.status_code == 422
    assert again.json["code"] == "credit_note_exceeds_invoice"
    listed = client.get(f"/v1/credit-notes?invoice_id={invoice['id']}", headers=tenant.headers)
    assert [n["number"] for n in listed.json["data"]] == list(reversed(numbers))


@pytest.mark.parametrize(
    "lines",
    [
        [{"line_id": "SEATS", "quantity": "6"}],
        [{"line_id": "SEATS", "amount": 4996}],
        [{"line_id": "SEATS", "quantity": "3"}, {"line_id": "SEATS", "quantity": "3"}],
    ],
    ids=["quantity", "amount", "twice_in_one_note"],
)
def test_nothing_is_issued_when_credit_note_exceeds_the_invoice(
    client: FlaskClient, tenant: TenantCtx, lines: list[dict[str, Any]]
) -> None:
    invoice = make_finalized(client, tenant)
    seats = invoice["lines"][1]["id"]
    body = {"invoice_id": invoice["id"], "lines": [{**x, "line_id": seats} for x in lines]}
    resp = _credit(client, tenant, body)
    assert resp.status_code == 422
    assert resp.json["code"] == "credit_note_exceeds_invoice"
    assert client.get("/v1/credit-notes", headers=tenant.headers).json["data"] == []
    assert get(client, tenant, invoice["id"]) == invoice
    # no number was used up
    ok = _credit(client, tenant, {"invoice_id": invoice["id"]})
    assert ok.json["number"].endswith("-00001")


def test_credit_note_is_refused_when_the_invoice_is_a_draft_or_unknown(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    draft = make_draft(client, tenant)
    resp = _credit(client, tenant, {"invoice_id": draft["id"]})
    assert (resp.status_code, resp.json["code"]) == (409, "invoice_not_finalized")
    unknown = _credit(client, tenant, {"invoice_id": "in_nothing"})
    assert (unknown.status_code, unknown.json["code"]) == (404, "invoice_not_found")
    foreign_line = make_finalized(client, tenant)["lines"][0]["id"]
    invoice = make_finalized(client, tenant)
    wrong = _credit(
        client, tenant, {"invoice_id": invoice["id"], "lines": [{"line_id": foreign_line}]}
    )
    assert (wrong.status_code, wrong.json["code"]) == (422, "invoice_line_not_found")


def test_void_issues_a_cancellation_and_voids_when_invoice_is_open(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    seats = invoice["lines"][1]
    _credit(
        client,
        tenant,
        {"invoice_id": invoice["id"], "lines": [{"line_id": seats["id"], "quantity": "1"}]},
    )
    resp = client.post(
        f"/v1/invoices/{invoice['id']}/void", json={"reason": "Storniert"}, headers=tenant.headers
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "void"
    assert resp.json["voided_at"] is not None
    notes = client.get(f"/v1/credit-notes?invoice_id={invoice['id']}", headers=tenant.headers).json[
        "data"
    ]
    cancellation = notes[0]
    assert cancellation["type"] == "cancellation"
    assert cancellation["reason"] == "Storniert"
    assert sum(n["net_amount"] for n in notes) == invoice["net_amount"]
    again = client.post(f"/v1/invoices/{invoice['id']}/void", json={}, headers=tenant.headers)
    assert (again.status_code, again.json["code"]) == (409, "invalid_invoice_transition")


def test_paid_invoice_is_corrected_by_credit_note_not_voided_when_paid(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant)
    client.post(f"/v1/invoices/{invoice['id']}/mark_paid", json={}, headers=tenant.headers)
    void = client.post(f"/v1/invoices/{invoice['id']}/void", json={}, headers=tenant.headers)
    assert (void.status_code, void.json["code"]) == (409, "invalid_invoice_transition")
    assert _credit(client, tenant, {"invoice_id": invoice["id"]}).status_code == 201
    assert get(client, tenant, invoice["id"])["status"] == "paid"


def test_credit_notes_share_the_invoice_series_when_configured(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant, numbering={"credit_notes_share_invoice_series": True})
    invoice = make_finalized(client, tenant)
    note = _credit(client, tenant, {"invoice_id": invoice["id"]}).json
    following = make_finalized(client, tenant)
    year = this_year()
    assert [invoice["number"], note["number"], following["number"]] == [
        f"TEST-RE-{year}-0000{i}" for i in (1, 2, 3)
    ]


def test_reverse_charge_credit_note_keeps_the_treatment_when_customer_changed_since(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    invoice = make_finalized(client, tenant, customer="at_business")
    assert invoice["tax_groups"][0]["treatment"] == "reverse_charge"
    # the customer loses its VAT ID afterwards: the correction still mirrors the invoice
    client.patch(
        f"/v1/customers/{invoice['customer_id']}", json={"vat_id": None}, headers=tenant.headers
    )
    note = _credit(client, tenant, {"invoice_id": invoice["id"]}).json
    assert note["tax_groups"][0]["treatment"] == "reverse_charge"
    xml = client.get(f"/v1/credit-notes/{note['id']}/xml", headers=tenant.headers).get_data()
    assert run_schematron(xml).failures == []
