"""`/v1/tax`: counters from the ledger (received payments, finalized documents), threshold
warnings sent once, the OSS return and the EC sales list equal to the sum of the quarter's
documents, as JSON, CSV and through `abowerk tax`."""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.events.models import Event
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_invoices import make_customer
from tests.api.test_seller_profile import put_profile
from tests.conftest import TenantCtx

TODAY = utcnow().date()
YEAR = TODAY.year
KU_COUNTERS = {"turnover_previous_year": 2_000_000}
OSS_COUNTERS = {"eu_b2c_previous_year": 2_000_000}  # > 10,000 EUR: destination from 1 January


def ku_profile(client: FlaskClient, t: TenantCtx, **counters: int) -> None:
    put_profile(
        client,
        t,
        kleinunternehmer=True,
        oss_registered=True,
        counters={**KU_COUNTERS, **counters},
        accepted_currencies=["EUR"],
    )


def invoice(
    client: FlaskClient,
    t: TenantCtx,
    customer_id: str,
    amount: int,
    *,
    supplied_on: str | None = None,
    lines: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "lines": [
            {"description": f"Abo {i}", "quantity": "1", "unit_amount": amount}
            for i in range(lines)
        ],
    }
    if supplied_on:
        body["supplied_on"] = supplied_on
    resp = client.post("/v1/invoices", json=body, headers=t.headers)
    assert resp.status_code == 201, resp.json
    resp = client.post(f"/v1/invoices/{resp.json['id']}/finalize", json={}, headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def pay(client: FlaskClient, t: TenantCtx, inv: dict[str, Any], amount: int | None = None) -> None:
    resp = client.post(
        f"/v1/invoices/{inv['id']}/payments",
        json={
            "amount": inv["gross_amount"] if amount is None else amount,
            "currency": inv["currency"],
            "reference": f"TRANSFER-{uuid.uuid4().hex}",
        },
        headers=t.headers,
    )
    assert resp.status_code == 201, resp.json


def credit(
    client: FlaskClient, t: TenantCtx, inv: dict[str, Any], amount: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"invoice_id": inv["id"], "reason": "Kulanz"}
    if amount is not None:
        body["lines"] = [{"line_id": inv["lines"][0]["id"], "amount": amount}]
    resp = client.post("/v1/credit-notes", json=body, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def counters(client: FlaskClient, t: TenantCtx, year: int = YEAR) -> dict[str, Any]:
    resp = client.get(f"/v1/tax/counters?year={year}", headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def threshold_events(app: Flask, t: TenantCtx, threshold: str) -> list[str]:
    with app.app_context():
        tenancy.set_tenant(db.session, t.tenant_id)
        rows = db.session.scalars(
            sa.select(Event).where(Event.type.like("tax.threshold.%")).order_by(Event.created_at)
        ).all()
        found = [e.type for e in rows if e.data["object"]["threshold"] == threshold]
        db.session.remove()
    return found


def treatment(inv: dict[str, Any]) -> str:
    return str(inv["lines"][0]["tax"]["treatment"])


# --- counters -------------------------------------------------------------------------------


def test_received_turnover_counts_net_share_of_payments_when_invoices_are_paid(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant, accepted_currencies=["EUR"])  # regular seller, 19 %
    de = make_customer(client, tenant, "de_consumer")
    inv = invoice(client, tenant, de, 100_00)
    assert inv["gross_amount"] == 119_00
    assert counters(client, tenant)["counters"]["turnover_current_year"] == "0.00"
    pay(client, tenant, inv, 59_50)  # half of it
    assert counters(client, tenant)["counters"]["turnover_current_year"] == "50.00"
    pay(client, tenant, inv, 59_50)
    data = counters(client, tenant)["counters"]
    assert data["turnover_current_year"] == "100.00"
    assert data["union_turnover_current_year"] == "100.00"
    assert data["eu_b2c_current_year"] == "0.00"


def test_foreign_supplies_feed_only_their_counters_when_finalized_and_paid(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant)
    fr = make_customer(client, tenant, "fr_consumer")
    at_b2b = make_customer(client, tenant, "at_business")
    ch_b2b = make_customer(client, tenant, "ch_business")
    for customer, amount in ((fr, 300_00), (at_b2b, 1000_00), (ch_b2b, 500_00)):
        pay(client, tenant, invoice(client, tenant, customer, amount))
    data = counters(client, tenant)["counters"]
    # FR consumer below 10,000 EUR: German place, § 19 turnover and Art. 59c both
    assert data["turnover_current_year"] == "300.00"
    assert data["eu_b2c_current_year"] == "300.00"
    # reverse charge to AT counts toward the Union turnover only; CH is outside the EU
    assert data["union_turnover_current_year"] == "1300.00"


def test_credit_note_reduces_eu_counters_when_issued(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant)
    fr = make_customer(client, tenant, "fr_consumer")
    inv = invoice(client, tenant, fr, 400_00)
    credit(client, tenant, inv, 100_00)
    data = counters(client, tenant)["counters"]
    assert data["eu_b2c_current_year"] == "300.00"
    assert data["union_turnover_current_year"] == "300.00"


def test_previous_year_comes_from_profile_when_no_ledger_for_it(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant, turnover_current_year=1_000_00)
    data = counters(client, tenant)["counters"]
    assert data["turnover_previous_year"] == "20000.00"
    assert data["turnover_current_year"] == "1000.00"  # the opening balance of this year
    nxt = counters(client, tenant, YEAR + 1)["counters"]
    assert nxt["turnover_previous_year"] == "1000.00"
    assert nxt["turnover_current_year"] == "0.00"


def test_crossing_invoice_is_taxed_and_warnings_go_out_once_when_100k_is_passed(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant, turnover_current_year=99_900_00)
    de = make_customer(client, tenant, "de_consumer")
    first = invoice(client, tenant, de, 50_00)
    assert treatment(first) == "kleinunternehmer_exempt"
    pay(client, tenant, first)  # 99,950.00 received
    current = "kleinunternehmer_current_year"
    assert threshold_events(app, tenant, current) == ["tax.threshold.approaching"]
    # 25,000 EUR were passed long ago: no exemption next year (crossed, without approaching)
    assert threshold_events(app, tenant, "kleinunternehmer_next_year") == ["tax.threshold.crossed"]
    crossing = invoice(client, tenant, de, 100_00)  # 100,050.00 > 100,000.00
    assert treatment(crossing) == "domestic"
    assert crossing["vat_amount"] == 19_00
    pay(client, tenant, crossing)
    later = invoice(client, tenant, de, 10_00)
    assert treatment(later) == "domestic"
    pay(client, tenant, later)
    data = counters(client, tenant)
    assert data["counters"]["turnover_current_year"] == "100060.00"
    assert data["crossed"] is True
    state = next(s for s in data["thresholds"] if s["threshold"] == "kleinunternehmer_current_year")
    assert state["status"] == "crossed"
    assert state["warned"] == ["approaching", "crossed"]
    assert threshold_events(app, tenant, current) == [
        "tax.threshold.approaching",
        "tax.threshold.crossed",
    ]
    assert threshold_events(app, tenant, "kleinunternehmer_next_year") == ["tax.threshold.crossed"]


def test_eu_b2c_threshold_warns_when_crossed_by_invoices(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant, eu_b2c_current_year=9_000_00)
    fr = make_customer(client, tenant, "fr_consumer")
    below = invoice(client, tenant, fr, 900_00)  # 9,900.00: still German place
    assert treatment(below) == "kleinunternehmer_exempt"
    crossing = invoice(client, tenant, fr, 200_00)  # 10,100.00: destination, OSS
    assert treatment(crossing) == "oss_destination"
    assert threshold_events(app, tenant, "eu_b2c_services") == [
        "tax.threshold.approaching",
        "tax.threshold.crossed",
    ]


def test_counters_need_tax_scope_and_profile_when_requested(
    client: FlaskClient, make_tenant: Any
) -> None:
    limited = make_tenant("Scoped GmbH", scopes=["billing:read"])
    assert client.get("/v1/tax/counters", headers=limited.headers).status_code == 403
    reader = make_tenant("Reader GmbH", scopes=["tax:read"])
    resp = client.get("/v1/tax/counters", headers=reader.headers)
    assert resp.status_code == 409
    assert resp.json["code"] == "seller_profile_required"


# --- OSS return and EC sales list -------------------------------------------------------------


def _quarter_of(day: str) -> str:
    year, month = int(day[:4]), int(day[5:7])
    return f"{year}Q{(month - 1) // 3 + 1}"


PAST = f"{YEAR}-08-14" if TODAY.month > 9 else f"{YEAR - 1}-11-14"


def _oss_setup(client: FlaskClient, t: TenantCtx) -> dict[str, Any]:
    put_profile(client, t, oss_registered=True, counters=OSS_COUNTERS, accepted_currencies=["EUR"])
    fr = make_customer(client, t, "fr_consumer")
    at_body = {
        "email": "anna@example.at",
        "name": "Anna Huber",
        "address": {"line1": "Ring 1", "postal_code": "1010", "city": "Wien", "country": "AT"},
    }
    resp = client.post("/v1/customers", json=at_body, headers=t.headers)
    assert resp.status_code == 201
    at = str(resp.json["id"])
    de = make_customer(client, t, "de_consumer")
    docs = {
        "now_fr": invoice(client, t, fr, 123_45, lines=2),
        "now_at": invoice(client, t, at, 99_99),
        "now_de": invoice(client, t, de, 500_00),  # domestic: never in the OSS return
        "past_fr": invoice(client, t, fr, 1000_00, supplied_on=PAST),
        "past_at": invoice(client, t, at, 40_00, supplied_on=PAST),
    }
    docs["note_now"] = credit(client, t, docs["now_fr"], 23_45)  # same quarter: reduces
    docs["note_past"] = credit(client, t, docs["past_fr"], 100_00)  # later: a correction
    return docs


def _sum(docs: list[dict[str, Any]], sign: int = 1) -> tuple[Decimal, Decimal]:
    net = vat = Decimal(0)
    for doc in docs:
        for group in doc["tax_groups"]:
            if group["treatment"] == "oss_destination":
                net += sign * Decimal(group["taxable_amount"]) / 100
                vat += sign * Decimal(group["vat_amount"]) / 100
    return net, vat


def test_oss_return_equals_sum_of_quarters_documents_when_built(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    docs = _oss_setup(client, tenant)
    current = _quarter_of(TODAY.isoformat())
    resp = client.get(f"/v1/tax/oss-return?quarter={current}", headers=tenant.headers)
    assert resp.status_code == 200, resp.json
    report = resp.json
    in_net, in_vat = _sum([docs["now_fr"], docs["now_at"]])
    out_net, out_vat = _sum([docs["note_now"]], -1)
    assert Decimal(report["total_net"]) == in_net + out_net
    assert Decimal(report["total_vat"]) == in_vat + out_vat
    assert {s["member_state"] for s in report["member_states"]} == {"AT", "FR"}
    fr = next(s for s in report["member_states"] if s["member_state"] == "FR")
    assert fr["lines"][0]["rate"] == "20.00"
    # the credit note of an earlier quarter's supply: a correction of that quarter
    c_net, c_vat = _sum([docs["note_past"]], -1)
    assert report["corrections"] == [
        {
            "period": _quarter_of(PAST).replace("Q", "-Q"),
            "member_state": "FR",
            "net": str(c_net.quantize(Decimal("0.01"))),
            "vat": str(c_vat.quantize(Decimal("0.01"))),
        }
    ]
    assert Decimal(report["total_vat_due"]) == in_vat + out_vat + c_vat
    # the earlier quarter's own return: its invoices, untouched by the later credit note
    resp = client.get(f"/v1/tax/oss-return?quarter={_quarter_of(PAST)}", headers=tenant.headers)
    past_net, past_vat = _sum([docs["past_fr"], docs["past_at"]])
    assert (Decimal(resp.json["total_net"]), Decimal(resp.json["total_vat"])) == (
        past_net,
        past_vat,
    )
    assert resp.json["corrections"] == []


def test_oss_return_is_bzst_csv_when_asked_by_format_or_accept(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    _oss_setup(client, tenant)
    quarter = _quarter_of(PAST)
    by_format = client.get(
        f"/v1/tax/oss-return?quarter={quarter}&format=csv", headers=tenant.headers
    )
    by_accept = client.get(
        f"/v1/tax/oss-return?quarter={quarter}",
        headers={**tenant.headers, "Accept": "text/csv"},
    )
    for resp in (by_format, by_accept):
        assert resp.status_code == 200
        assert resp.mimetype == "text/csv"
        assert resp.text == (
            "#v2.0\n1,AT,,,,\n2,AT,STANDARD,20.00,40.00,8.00\n"
            "1,FR,,,,\n2,FR,STANDARD,20.00,1000.00,200.00\n"
        )


def test_ec_sales_list_sums_reverse_charge_per_vat_id_when_built(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant, accepted_currencies=["EUR"])
    at_b2b = make_customer(client, tenant, "at_business")
    de_b2b = make_customer(client, tenant, "de_business")
    first = invoice(client, tenant, at_b2b, 1000_40, supplied_on=PAST)
    invoice(client, tenant, at_b2b, 500_00, supplied_on=PAST)
    invoice(client, tenant, de_b2b, 700_00, supplied_on=PAST)  # domestic: not in the list
    credit(client, tenant, first, 200_00)  # corrects the list of the supply's quarter
    quarter = _quarter_of(PAST)
    resp = client.get(f"/v1/tax/ec-sales-list?quarter={quarter}", headers=tenant.headers)
    assert resp.status_code == 200, resp.json
    assert resp.json["lines"] == [
        {"country_code": "AT", "vat_number": "U13585627", "amount": "1300", "kind": "S"}
    ]
    resp = client.get(f"/v1/tax/ec-sales-list?quarter={quarter}&format=csv", headers=tenant.headers)
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert rows == [
        {"country_code": "AT", "vat_number": "U13585627", "amount": "1300", "kind": "S"}
    ]


@pytest.mark.parametrize("quarter", ["2026Q5", "2026", "Q3-2026", ""])
def test_bad_quarter_is_refused_when_requested(
    client: FlaskClient, tenant: TenantCtx, quarter: str
) -> None:
    put_profile(client, tenant)
    resp = client.get(f"/v1/tax/oss-return?quarter={quarter}", headers=tenant.headers)
    assert resp.status_code == 422
    assert "quarter" in json.dumps(resp.json["errors"])


def test_cli_prints_the_api_numbers_when_run_for_a_tenant(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    _oss_setup(client, tenant)
    quarter = _quarter_of(PAST)
    api = client.get(f"/v1/tax/oss-return?quarter={quarter}", headers=tenant.headers).json
    runner = app.test_cli_runner()
    args = ["tax", "oss-return", "--tenant", tenant.tenant_id, "--quarter", quarter]
    result = runner.invoke(args=[*args, "--mode", "test"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == api
    result = runner.invoke(args=[*args, "--mode", "test", "--csv"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("#v2.0\n1,AT,,,,\n")
    result = runner.invoke(
        args=["tax", "ec-sales-list", "--tenant", tenant.tenant_id, "--quarter", quarter,
              "--mode", "test"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["lines"] == []
    result = runner.invoke(args=[*args, "--mode", "live"])
    assert result.exit_code == 1
    assert "seller_profile_required" in result.output
