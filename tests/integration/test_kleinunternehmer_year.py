"""Issue 6, "Done when" #1: a year of a Kleinunternehmer on a test clock.

A German Kleinunternehmer (previous year 20,000 EUR, OSS-registered) sells monthly and
annual subscriptions to customers in DE, AT, FR and the US, consumers and businesses with
checked VAT IDs. The clock advances month by month through 2026; the billing run invoices
every period that falls due and every invoice is paid in full by bank transfer (the manual
payment path), so the received turnover (§ 19 UStG, Ist) grows and passes 100,000 EUR in
June and the cross-border consumer total (Art. 59c) passes 10,000 EUR in August.

Checked: every subscription period is invoiced exactly once; the German-place invoices are
exempt up to the crossing one, which is taxed, and every later one is taxed; the EU
consumers move to OSS from the Art. 59c crossing; business customers in AT/FR stay reverse
charge and US customers out of scope all year; each warning goes out once; the OSS return
(API and CLI) equals the sum of its quarter's invoices; the counters equal the ledger.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.events.models import Event
from saas.extensions import db
from saas.kernel import tenancy
from tests.api.test_catalog import create_plan, create_price, create_product
from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import create_subscription
from tests.conftest import TenantCtx

CHECKED = {"status": "valid", "checked_at": "2025-12-15T09:00:00Z"}
START = "2026-01-01T09:00:00Z"
GERMAN_PLACE = {"kleinunternehmer_exempt", "domestic"}
LIMIT = Decimal(100_000)

CUSTOMERS: dict[str, dict[str, Any]] = {
    "de_b2b": {
        "name": "Nordlicht Handels AG",
        "address": {"line1": "Am Sandtorkai 50", "postal_code": "20457", "city": "Hamburg",
                    "country": "DE"},
        "is_business": True, "vat_id": "DE136695976", "vat_id_check": CHECKED,
    },
    "de_b2c": {
        "name": "Erika Mustermann",
        "address": {"line1": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                    "country": "DE"},
    },
    "at_b2c": {
        "name": "Anna Huber",
        "address": {"line1": "Ring 1", "postal_code": "1010", "city": "Wien", "country": "AT"},
    },
    "at_b2b": {
        "name": "Alpenblick Software GmbH",
        "address": {"line1": "Maria-Theresien-Straße 21", "postal_code": "6020",
                    "city": "Innsbruck", "country": "AT"},
        "is_business": True, "vat_id": "ATU13585627", "vat_id_check": CHECKED,
    },
    "fr_b2c": {
        "name": "Camille Martin",
        "address": {"line1": "12 rue des Lilas", "postal_code": "69003", "city": "Lyon",
                    "country": "FR"},
    },
    "fr_b2b": {
        "name": "Société Exemple SA",
        "address": {"line1": "1 avenue de France", "postal_code": "75013", "city": "Paris",
                    "country": "FR"},
        "is_business": True, "vat_id": "FR23334175221", "vat_id_check": CHECKED,
    },
    "us_b2c": {
        "name": "John Doe",
        "address": {"line1": "1 Main St", "postal_code": "10001", "city": "New York",
                    "country": "US"},
    },
    "us_b2b": {
        "name": "Example Inc.",
        "address": {"line1": "500 Market St", "postal_code": "94105", "city": "San Francisco",
                    "country": "US"},
        "is_business": True,
    },
}  # fmt: skip

# (customer, interval, net price in cents)
SUBSCRIPTIONS = {
    "de_b2b_monthly": ("de_b2b", "month", 900_000),
    "de_b2c_monthly": ("de_b2c", "month", 150_000),
    "at_b2c_monthly": ("at_b2c", "month", 60_000),
    "fr_b2c_monthly": ("fr_b2c", "month", 70_000),
    "fr_b2b_monthly": ("fr_b2b", "month", 80_000),
    "us_b2c_monthly": ("us_b2c", "month", 30_000),
    # January 41,000 + 11,800 a month of German-place supplies: exactly 100,000.00 received
    # before June's invoices (still exempt: "does not exceed"), so every June invoice crosses
    "de_b2b_annual": ("de_b2b", "year", 4_100_000),
    "at_b2b_annual": ("at_b2b", "year", 600_000),
    "us_b2b_annual": ("us_b2b", "year", 400_000),
}
# the 1st of each month, noon UTC: after local midnight in Berlin, summer or winter
MONTHS = [f"2026-{m:02d}-01T12:00:00Z" for m in range(2, 13)] + ["2026-12-31T12:00:00Z"]


def _get(client: FlaskClient, t: TenantCtx, path: str) -> Any:
    resp = client.get(path, headers=t.headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def _all_invoices(client: FlaskClient, t: TenantCtx, query: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = ""
    while True:
        page = _get(client, t, f"/v1/invoices?limit=100{query}{after}")
        found += page["data"]
        if not page["has_more"]:
            return found
        after = f"&starting_after={page['data'][-1]['id']}"


def _pay_open(client: FlaskClient, t: TenantCtx) -> int:
    paid = 0
    for inv in _all_invoices(client, t, "&status=open"):
        resp = client.post(
            f"/v1/invoices/{inv['id']}/payments",
            json={
                "amount": inv["gross_amount"],
                "currency": inv["currency"],
                "reference": f"SEPA-{uuid.uuid4().hex}",
            },
            headers=t.headers,
        )
        assert resp.status_code == 201, resp.json
        paid += 1
    return paid


def _advance(client: FlaskClient, t: TenantCtx, clock_id: str, to: str) -> None:
    resp = client.post(
        f"/v1/test_clocks/{clock_id}/advance", json={"frozen_time": to}, headers=t.headers
    )
    assert resp.status_code == 200, resp.json


def _threshold_events(app: Flask, t: TenantCtx) -> Counter[tuple[str, str]]:
    with app.app_context():
        tenancy.set_tenant(db.session, t.tenant_id)
        rows = db.session.scalars(sa.select(Event).where(Event.type.like("tax.threshold.%")))
        found = Counter((e.type, e.data["object"]["threshold"]) for e in rows)
        db.session.remove()
    return found


def _treatment(inv: dict[str, Any]) -> str:
    treatments = {line["tax"]["treatment"] for line in inv["lines"]}
    assert len(treatments) == 1, inv
    return treatments.pop()


def _oss_sum(invoices: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    net = vat = Decimal(0)
    for inv in invoices:
        for group in inv["tax_groups"]:
            if group["treatment"] == "oss_destination":
                net += Decimal(group["taxable_amount"]) / 100
                vat += Decimal(group["vat_amount"]) / 100
    return net, vat


def test_kleinunternehmer_year_crosses_100k_once_and_oss_matches_when_clock_runs(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(
        client,
        tenant,
        kleinunternehmer=True,
        oss_registered=True,
        counters={"turnover_previous_year": 2_000_000},
        accepted_currencies=["EUR"],
    )
    clock = client.post(
        "/v1/test_clocks", json={"frozen_time": START, "name": "2026"}, headers=tenant.headers
    )
    assert clock.status_code == 201, clock.json
    clock_id = clock.json["id"]
    product = create_product(client, tenant)
    plan = create_plan(client, tenant, product["id"], name="Cloud")
    customers = {}
    for key, body in CUSTOMERS.items():
        full = {**body, "email": f"{key}@example.org", "test_clock_id": clock_id}
        resp = client.post("/v1/customers", json=full, headers=tenant.headers)
        assert resp.status_code == 201, resp.json
        customers[key] = resp.json["id"]
    subs = {}
    for key, (customer, interval, amount) in SUBSCRIPTIONS.items():
        price = create_price(client, tenant, plan["id"], unit_amount=amount, interval=interval)
        subs[key] = create_subscription(
            client, tenant, price["id"], customer_id=customers[customer]
        )["id"]

    # January's invoices are due at the start; then month by month, paying what is open
    _advance(client, tenant, clock_id, "2026-01-01T10:00:00Z")
    _pay_open(client, tenant)
    for instant in MONTHS:
        _advance(client, tenant, clock_id, instant)
        _pay_open(client, tenant)

    invoices = sorted(_all_invoices(client, tenant), key=lambda i: i["number"])
    by_sub = {v: k for k, v in subs.items()}

    # every subscription period invoiced exactly once
    periods = Counter((i["subscription_id"], i["period_start_on"]) for i in invoices)
    assert all(n == 1 for n in periods.values()), periods
    for key, sub_id in subs.items():
        starts = sorted(p for s, p in periods if s == sub_id)
        expected = (
            [f"2026-{m:02d}-01" for m in range(1, 13)]
            if SUBSCRIPTIONS[key][1] == "month"
            else ["2026-01-01"]
        )
        assert starts == expected, key
    assert all(i["status"] == "paid" for i in invoices)

    # § 19 UStG on received consideration (Ist): a supply is exempt while the money received
    # before it (every earlier month's invoices, all paid) plus its own net stays within
    # 100,000 EUR; the invoice that crosses is taxed and so is every later one
    german = [i for i in invoices if _treatment(i) in GERMAN_PLACE]
    received_before = {
        month: sum(
            (Decimal(i["net_amount"]) / 100 for i in german if i["supplied_on"][:7] < month),
            Decimal(0),
        )
        for month in {i["supplied_on"][:7] for i in german}
    }
    for inv in german:
        before = received_before[inv["supplied_on"][:7]]
        crosses = before + Decimal(inv["net_amount"]) / 100 > LIMIT
        assert _treatment(inv) == ("domestic" if crosses else "kleinunternehmer_exempt"), inv
    kinds = [_treatment(i) for i in german]
    crossing_at = kinds.index("domestic")
    assert set(kinds[:crossing_at]) == {"kleinunternehmer_exempt"}
    assert set(kinds[crossing_at:]) == {"domestic"}  # the crossing one and all later ones
    crossing = german[crossing_at]
    assert crossing["supplied_on"].startswith("2026-06")  # mid-year
    assert received_before["2026-06"] <= LIMIT  # the crossing supply is the one that exceeds
    assert crossing["vat_amount"] == crossing["net_amount"] * 19 // 100
    for inv in german[crossing_at:]:
        assert Decimal(inv["tax_groups"][0]["rate"]) == 19

    # business customers: reverse charge (AT, FR) or out of scope (US) all year
    for inv in invoices:
        customer = SUBSCRIPTIONS[by_sub[inv["subscription_id"]]][0]
        if customer in ("at_b2b", "fr_b2b"):
            assert _treatment(inv) == "reverse_charge", inv["number"]
        if customer.startswith("us_"):
            assert _treatment(inv) == "out_of_scope", inv["number"]

    # Art. 59c: EU consumers at the German place until the 10,000 EUR crossing, then OSS
    eu_b2c = [
        i
        for i in invoices
        if SUBSCRIPTIONS[by_sub[i["subscription_id"]]][0] in ("at_b2c", "fr_b2c")
    ]
    eu_kinds = [_treatment(i) in GERMAN_PLACE for i in eu_b2c]
    first_oss = eu_kinds.index(False)
    assert all(eu_kinds[:first_oss]) and not any(eu_kinds[first_oss:])
    assert {_treatment(i) for i in eu_b2c[first_oss:]} == {"oss_destination"}
    # the first destination supply is the one that takes the year's total past 10,000 EUR
    # (Art. 59c counts supplies, invoiced: the earlier ones of the same run count too)
    eu_before = sum((Decimal(i["net_amount"]) / 100 for i in eu_b2c[:first_oss]), Decimal(0))
    assert eu_before <= 10_000 < eu_before + Decimal(eu_b2c[first_oss]["net_amount"]) / 100
    assert eu_b2c[first_oss]["supplied_on"].startswith("2026-08")

    # the OSS return of each quarter equals the sum of that quarter's invoices
    runner = app.test_cli_runner()
    for quarter, months in (("2026Q3", ("07", "08", "09")), ("2026Q4", ("10", "11", "12"))):
        of_quarter = [i for i in invoices if i["supplied_on"][5:7] in months]
        net, vat = _oss_sum(of_quarter)
        assert net > 0
        report = _get(client, tenant, f"/v1/tax/oss-return?quarter={quarter}")
        assert (Decimal(report["total_net"]), Decimal(report["total_vat"])) == (net, vat)
        assert report["corrections"] == []
        cli = runner.invoke(
            args=["tax", "oss-return", "--tenant", tenant.tenant_id, "--quarter", quarter,
                  "--mode", "test"]
        )  # fmt: skip
        assert cli.exit_code == 0, cli.output
        assert json.loads(cli.output) == report
    assert _get(client, tenant, "/v1/tax/oss-return?quarter=2026Q2")["member_states"] == []

    # the counters are the ledger: received net of German-place supplies, EU consumers
    data = _get(client, tenant, "/v1/tax/counters?year=2026")
    german_net = sum(Decimal(i["net_amount"]) for i in german) / 100
    assert Decimal(data["counters"]["turnover_current_year"]) == german_net
    eu_net = sum(Decimal(i["net_amount"]) for i in eu_b2c) / 100
    assert Decimal(data["counters"]["eu_b2c_current_year"]) == eu_net
    status = {s["threshold"]: s["status"] for s in data["thresholds"]}
    assert status["kleinunternehmer_current_year"] == "crossed"
    assert status["eu_b2c_services"] == "crossed"
    next_year = _get(client, tenant, "/v1/tax/counters?year=2027")["counters"]
    assert Decimal(next_year["turnover_previous_year"]) == german_net

    # each warning went out once
    events = _threshold_events(app, tenant)
    for threshold in ("kleinunternehmer_current_year", "eu_b2c_services"):
        assert events[("tax.threshold.approaching", threshold)] == 1, events
        assert events[("tax.threshold.crossed", threshold)] == 1, events
    assert all(n == 1 for n in events.values()), events

    # issue 7: both reconciliations of the MRR over this year report nothing unexplained
    recon = _get(client, tenant, "/v1/metrics/reconciliation?from=2026-01&to=2026-12")
    ledger = [line for line in recon["lines"] if line["check"] == "ledger_vs_state"]
    assert ledger == []
    assert recon["unexplained"] == 0, [line for line in recon["lines"] if not line["explained"]]
    # every period is invoiced and paid: what remains are annual plans' MRR rounding cents
    assert {line["cause"] for line in recon["lines"]} <= {"mrr_rounding"}
