"""MRR metrics through the API, on a year-long test-clock scenario: monthly and annual plans,
trials (converting and not), upgrades, downgrades (now and at the period end), a pause and a
resume, a customer with two subscriptions, a cancellation and a reactivation, a plan switch
done as cancel + create at one instant, and a customer paying in USD.

Every number below is worked out by hand from the catalog of `Shop` (Starter 19.00, Pro 49.00,
Business 99.00 a month, Pro yearly 490.00 = 40.83 MRR, 10.00 per seat, Pro 59.00 USD).
The ledger is kept incrementally by the worker task (inline in tests) and must equal a
rebuild; the ledger-vs-state reconciliation must report nothing at any month end.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.metrics.cli import compute
from billing.metrics.fx import EcbMonthEndRates, convert_minor
from billing.metrics.models import MrrMovement
from billing.metrics.months import Month
from billing.metrics.services import rebuild_ledger
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_subscriptions import Shop, make_shop
from tests.conftest import TenantCtx

YEAR = "from=2025-01&to=2025-12"


@dataclass
class Year:
    shop: Shop
    customers: dict[str, str]


def _ok(resp: Any) -> Any:
    assert resp.status_code == 200, resp.json
    return resp.json


def run_year(client: FlaskClient, tenant: TenantCtx) -> Year:
    shop = make_shop(client, tenant, frozen_time="2025-01-02T09:00:00Z")
    subs: dict[str, dict[str, Any]] = {}
    subs["A"] = shop.subscribe("starter")  # new 19.00
    subs["B"] = shop.subscribe("pro_yearly")  # new 40.83
    subs["C"] = shop.subscribe("pro", trial_days=14)  # converts on 16 Jan: new 49.00
    subs["D"] = shop.subscribe("starter", trial_days=14, has_payment_method=False)  # canceled
    subs["E"] = shop.subscribe("seat", quantity=3)  # new 30.00
    subs["U"] = shop.subscribe("pro_usd")  # new 59.00 USD
    shop.advance("2025-02-10T09:00:00Z")
    _ok(shop.action(subs["A"]["id"], "change", {"price_id": shop.price_id("pro")}))  # +30.00
    _ok(shop.action(subs["E"]["id"], "change", {"quantity": 5}))  # +20.00
    subs["H"] = shop.subscribe("pro_yearly")  # new 40.83
    shop.advance("2025-03-05T09:00:00Z")
    body = {"price_id": shop.price_id("starter"), "proration": "period_end"}
    _ok(shop.action(subs["C"]["id"], "change", body))  # applies 16 Mar: −30.00
    shop.advance("2025-04-03T09:00:00Z")
    _ok(shop.action(subs["A"]["id"], "pause"))  # churn −49.00
    shop.advance("2025-05-07T09:00:00Z")
    _ok(shop.action(subs["A"]["id"], "resume"))  # reactivation +49.00
    shop.advance("2025-06-01T09:00:00Z")
    subs["F1"] = shop.subscribe("starter")
    subs["F2"] = shop.subscribe("business", customer_id=subs["F1"]["customer_id"])  # new 118.00
    shop.advance("2025-07-01T09:00:00Z")
    _ok(shop.action(subs["F2"]["id"], "cancel", {}))  # one of two: contraction −99.00
    _ok(shop.action(subs["U"]["id"], "cancel", {"at_period_end": True}))  # 2 Jul: −59.00 USD
    shop.advance("2025-08-20T09:00:00Z")
    _ok(shop.action(subs["B"]["id"], "change", {"price_id": shop.price_id("business")}))  # +58.17
    shop.advance("2025-09-09T09:00:00Z")
    _ok(shop.action(subs["C"]["id"], "cancel", {}))  # churn −19.00
    shop.advance("2025-10-12T09:00:00Z")
    subs["C2"] = shop.subscribe("pro", customer_id=subs["C"]["customer_id"])  # reactivation
    subs["G"] = shop.subscribe("starter")  # new 19.00
    shop.advance("2025-10-20T09:00:00Z")
    # a plan switch done as cancel + create at one instant: one expansion of 30.00
    _ok(shop.action(subs["G"]["id"], "cancel", {}))
    subs["G2"] = shop.subscribe("pro", customer_id=subs["G"]["customer_id"])
    shop.advance("2025-11-15T09:00:00Z")
    _ok(shop.action(subs["E"]["id"], "change", {"quantity": 2}))  # contraction −30.00
    shop.advance("2026-01-01T12:00:00Z")  # every renewal up to the year's end
    return Year(shop, {name: sub["customer_id"] for name, sub in subs.items()})


# month → (starting, new, expansion, contraction, churn, reactivation, ending, customers_end)
EXPECTED_EUR = {
    "2025-01": (0, 13883, 0, 0, 0, 0, 13883, 4),
    "2025-02": (13883, 4083, 5000, 0, 0, 0, 22966, 5),
    "2025-03": (22966, 0, 0, -3000, 0, 0, 19966, 5),
    "2025-04": (19966, 0, 0, 0, -4900, 0, 15066, 4),
    "2025-05": (15066, 0, 0, 0, 0, 4900, 19966, 5),
    "2025-06": (19966, 11800, 0, 0, 0, 0, 31766, 6),
    "2025-07": (31766, 0, 0, -9900, 0, 0, 21866, 6),
    "2025-08": (21866, 0, 5817, 0, 0, 0, 27683, 6),
    "2025-09": (27683, 0, 0, 0, -1900, 0, 25783, 5),
    "2025-10": (25783, 1900, 3000, 0, 0, 4900, 35583, 7),
    "2025-11": (35583, 0, 0, -3000, 0, 0, 32583, 7),
    "2025-12": (32583, 0, 0, 0, 0, 0, 32583, 7),
}
FIELDS = ("starting_mrr", "new", "expansion", "contraction", "churn", "reactivation",
          "ending_mrr", "customers_end")  # fmt: skip


def _series(document: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    (series,) = [s for s in document["currencies"] if s["currency"] == currency]
    return list(series["months"])


def _ledger(app: Flask, tenant_id: str) -> list[tuple[Any, ...]]:
    with app.app_context():
        tenancy.set_tenant(db.session, tenant_id)
        rows = db.session.execute(
            sa.select(
                MrrMovement.id,
                MrrMovement.livemode,
                MrrMovement.customer_id,
                MrrMovement.currency,
                MrrMovement.occurred_at,
                MrrMovement.month,
                MrrMovement.kind,
                MrrMovement.amount,
                MrrMovement.mrr_before,
                MrrMovement.mrr_after,
            ).order_by(MrrMovement.id)
        ).all()
        db.session.remove()
    return [tuple(r) for r in rows]


def test_year_of_changes_gives_hand_computed_movements_and_reconciles_when_reported(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    year = run_year(client, tenant)
    headers = tenant.headers

    movements = _ok(client.get(f"/v1/metrics/movements?{YEAR}", headers=headers))
    assert movements["object"] == "metrics.movements" and movements["timezone"] == "Europe/Berlin"
    assert movements["livemode"] is False and movements["reporting_currency"] == "EUR"
    eur = _series(movements, "EUR")
    assert {m["month"]: tuple(m[f] for f in FIELDS) for m in eur} == EXPECTED_EUR
    usd = _series(movements, "USD")
    assert [(m["month"], m["new"], m["churn"]) for m in usd if m["new"] or m["churn"]] == [
        ("2025-01", 5900, 0),
        ("2025-07", 0, -5900),
    ]

    # the total in EUR converts USD at each month's ECB month-end rate
    total = movements["total"]
    assert total["currency"] == "EUR" and "ECB" in total["conversion"]
    january = total["months"][0]
    (rate,) = january["rates"]
    assert (rate["currency"], rate["published_on"]) == ("USD", "2025-01-31")
    ecb = EcbMonthEndRates()
    usd_jan, eur_jan = ecb.rate("USD", Month(2025, 1)), ecb.rate("EUR", Month(2025, 1))
    assert usd_jan and eur_jan and Decimal(rate["rate"]) == usd_jan.rate
    converted = convert_minor(5900, usd_jan, eur_jan).quantize(Decimal(1))
    assert january["new"] == 13883 + int(converted)
    for line in total["months"]:
        moved = sum(line[k] for k in ("new", "expansion", "contraction", "churn", "reactivation"))
        assert line["starting_mrr"] + moved == line["ending_mrr"]

    churn = _ok(client.get(f"/v1/metrics/churn?{YEAR}&currency=EUR", headers=headers))
    assert churn["total"] is None
    by_month = {m["month"]: m for m in _series(churn, "EUR")}
    assert by_month["2025-01"]["trials_ended"] == 2  # C converted, D was canceled
    assert by_month["2025-01"]["trial_conversion_rate"] == "0.5000"
    april = by_month["2025-04"]
    assert (april["customers_start"], april["churned_customers"]) == (5, 1)
    assert april["logo_churn_rate"] == "0.2000"
    assert april["gross_mrr_churn_rate"] == "0.2454"  # 4900 / 19966
    assert april["net_revenue_retention"] == "0.7546"
    assert by_month["2025-01"]["logo_churn_rate"] is None  # no customers at the start
    october = by_month["2025-10"]
    assert october["net_mrr_churn_rate"] == "-0.3064"  # −(3000 + 4900) / 25783

    mrr = _ok(client.get(f"/v1/metrics/mrr?{YEAR}", headers=headers))
    december = _series(mrr, "EUR")[-1]
    assert december == {
        "month": "2025-12",
        "starting_mrr": 32583,
        "ending_mrr": 32583,
        "net_new_mrr": 0,
        "arr": 32583 * 12,
        "customers_start": 7,
        "customers_end": 7,
        "arpa": 4655,  # 325.83 / 7 = 46.547…
    }

    cohorts = _ok(client.get(f"/v1/metrics/cohorts?{YEAR}&currency=EUR", headers=headers))
    assert [(c["cohort"], c["customers"], c["mrr"]) for c in cohorts["cohorts"]] == [
        ("2025-01", 4, 13883),
        ("2025-02", 1, 4083),
        ("2025-06", 1, 11800),
        ("2025-10", 1, 1900),
    ]
    january_cohort = cohorts["cohorts"][0]["cells"]
    assert len(january_cohort) == 12
    assert [(c["age"], c["customers"]) for c in january_cohort[2:5]] == [(2, 4), (3, 3), (4, 4)]
    assert january_cohort[-1] == {
        "month": "2025-12",
        "age": 11,
        "customers": 4,
        "mrr": 21700,  # A 49.00 + B 99.00 + C 49.00 + E 20.00
        "customer_retention": "1.0000",
        "mrr_retention": "1.5631",
    }

    # ledger vs. state: nothing at any month end of the year, nor today
    recon = _ok(
        client.get(f"/v1/metrics/reconciliation?{YEAR}&check=ledger_vs_state", headers=headers)
    )
    assert (recon["month_ends"], recon["customers"]) == (12, 9)
    assert (recon["differences"], recon["unexplained"], recon["lines"]) == (0, 0, [])
    # both reconciliations: the ledger's lines (none) and MRR vs. invoices, where every
    # difference of the year has a named cause
    both = _ok(client.get(f"/v1/metrics/reconciliation?{YEAR}", headers=headers))
    assert both["lines"], "the periods of the year are compared with the invoices"
    assert {line["check"] for line in both["lines"]} == {"mrr_vs_invoices"}
    assert both["unexplained"] == 0
    assert all(line["explained"] for line in both["lines"])

    # the ledger kept incrementally is the ledger rebuilt set-based from the history
    incremental = _ledger(app, tenant.tenant_id)
    assert len(incremental) == 20
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        assert rebuild_ledger(db.session, tenant.tenant_id, now=utcnow()) == 20
        db.session.commit()
        db.session.remove()
    assert _ledger(app, tenant.tenant_id) == incremental

    # the analysts' command over the history exported as an event file gives the same months
    lines = []
    for sub in _ok(client.get("/v1/subscriptions?limit=100", headers=headers))["data"]:
        for row in year.shop.history(sub["id"]):
            mrr = Decimal(row["mrr_after"]).scaleb(-2)
            lines.append(
                json.dumps(
                    {
                        "customer_id": sub["customer_id"],
                        "subscription_id": sub["id"],
                        "at": row["occurred_at"],
                        "mrr": str(mrr),
                        "currency": sub["currency"],
                    }
                )
            )
    from zoneinfo import ZoneInfo

    document = compute(
        io.StringIO("\n".join(lines)),
        Month(2025, 1),
        Month(2025, 12),
        ZoneInfo("Europe/Berlin"),
        "EUR",
    )
    for cli_month, api_month in zip(document["months"], eur, strict=True):
        for name in ("starting_mrr", "new", "expansion", "contraction", "churn", "reactivation",
                     "ending_mrr"):  # fmt: skip
            assert Decimal(cli_month[name]) == Decimal(api_month[name]).scaleb(-2)
        assert cli_month["customers_end"] == api_month["customers_end"]


def test_reports_come_as_csv_and_pictures_when_format_asks(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = make_shop(client, tenant, frozen_time="2025-01-02T09:00:00Z")
    sub = shop.subscribe("pro")
    shop.subscribe("pro_usd")
    shop.advance("2025-02-10T09:00:00Z")
    _ok(shop.action(sub["id"], "cancel", {}))
    headers = tenant.headers
    resp = client.get("/v1/metrics/movements?from=2025-01&to=2025-02&format=csv", headers=headers)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["series"], r["month"], r["new"], r["churn"]) for r in rows[:4]] == [
        ("EUR", "2025-01", "49.00", "0.00"),
        ("EUR", "2025-02", "0.00", "-49.00"),
        ("USD", "2025-01", "59.00", "0.00"),
        ("USD", "2025-02", "0.00", "0.00"),
    ]
    assert {r["series"] for r in rows} == {"EUR", "USD", "total"}
    for url in ("mrr", "movements", "cohorts"):
        svg = client.get(f"/v1/metrics/{url}?from=2025-01&to=2025-02&format=svg", headers=headers)
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
        again = client.get(f"/v1/metrics/{url}?from=2025-01&to=2025-02&format=svg", headers=headers)
        assert svg.data == again.data  # deterministic: the dashboard may cache by content
        png = client.get(f"/v1/metrics/{url}?from=2025-01&to=2025-02&format=png", headers=headers)
        assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    for url in ("churn", "cohorts", "reconciliation"):
        table = client.get(f"/v1/metrics/{url}?from=2025-01&to=2025-02&format=csv", headers=headers)
        assert table.status_code == 200 and table.mimetype == "text/csv"
    refused = client.get("/v1/metrics/churn?format=svg", headers=headers)
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2025-13", "from"),
        ("to=25-01", "to"),
        ("from=2025-05&to=2025-01", "to"),
        ("from=2010-01&to=2025-01", "from"),
        ("currency=eur", "currency"),
        ("format=pdf", "format"),
    ],
)
def test_bad_arguments_are_422_when_reports_are_asked_for(
    client: FlaskClient, tenant: TenantCtx, query: str, field: str
) -> None:
    resp = client.get(f"/v1/metrics/mrr?{query}", headers=tenant.headers)
    assert resp.status_code == 422, resp.json
    assert field in resp.json["errors"]


def test_metrics_need_their_scope_and_see_one_tenant_and_mode_when_read(
    client: FlaskClient, tenant: TenantCtx, make_tenant: Any
) -> None:
    shop = make_shop(client, tenant, frozen_time="2025-01-02T09:00:00Z")
    shop.subscribe("pro")
    other = make_tenant("Andere AG")
    narrow = make_tenant("Schmal GmbH", scopes=["customers:read"])
    assert client.get("/v1/metrics/mrr", headers=narrow.headers).status_code == 403
    reader = make_tenant("Leser GmbH", scopes=["metrics:read"])
    assert client.get("/v1/metrics/mrr", headers=reader.headers).status_code == 200
    seen = _ok(client.get("/v1/metrics/mrr?from=2025-01&to=2025-01", headers=other.headers))
    assert seen["currencies"] == []
    live = make_tenant("Live GmbH", livemode=True)
    assert _ok(client.get("/v1/metrics/mrr?from=2025-01&to=2025-01", headers=live.headers))[
        "livemode"
    ]
    own = _ok(client.get("/v1/metrics/mrr?from=2025-01&to=2025-01", headers=tenant.headers))
    assert _series(own, "EUR")[0]["ending_mrr"] == 4900
