"""Billing runs through the API: a test clock's advance invoices what fell due (one invoice
per subscription period, finalized with the tax decision), runs are listed and read, and
nothing is invoiced twice."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import Shop, make_shop
from tests.conftest import TenantCtx

FEB_1_BERLIN = "2026-01-31T23:00:00+00:00"
MAR_1_BERLIN = "2026-02-28T23:00:00+00:00"


def invoices(shop: Shop) -> list[dict[str, Any]]:
    resp = shop.client.get("/v1/invoices?limit=100", headers=shop.headers)
    assert resp.status_code == 200, resp.json
    return sorted(resp.json["data"], key=lambda i: i["number"])


def runs(shop: Shop) -> list[dict[str, Any]]:
    resp = shop.client.get("/v1/billing-runs?limit=100", headers=shop.headers)
    assert resp.status_code == 200, resp.json
    return list(resp.json["data"])


def _shop(client: FlaskClient, tenant: TenantCtx) -> Shop:
    shop = make_shop(client, tenant)
    put_profile(client, tenant)
    return shop


def test_each_period_is_invoiced_once_when_a_test_clock_advances(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    shop = _shop(client, tenant)
    monthly = shop.subscribe("starter")
    yearly = shop.subscribe("pro_yearly")
    shop.advance(FEB_1_BERLIN)
    shop.advance(MAR_1_BERLIN)
    got = invoices(shop)
    # starter: Jan (the start), Feb, Mar; yearly: the year it started
    keys = sorted((i["subscription_id"], i["period_start_on"]) for i in got)
    assert keys == sorted(
        [
            (monthly["id"], "2026-01-01"),
            (monthly["id"], "2026-02-01"),
            (monthly["id"], "2026-03-01"),
            (yearly["id"], "2026-01-01"),
        ]
    )
    assert all(i["status"] == "open" and i["number"] for i in got)
    starter = [i for i in got if i["subscription_id"] == monthly["id"]]
    assert [i["net_amount"] for i in starter] == [1900, 1900, 1900]
    assert all(i["vat_amount"] == 361 for i in starter)  # 19 % of 19.00, DE B2C
    numbers = [i["number"] for i in got]
    assert len(set(numbers)) == 4
    assert all(run["status"] == "succeeded" for run in runs(shop))
    assert sum(run["invoices_finalized"] for run in runs(shop)) == 4


def test_run_is_read_by_id_and_hidden_from_other_tenants_when_listed(
    client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    shop = _shop(client, tenant)
    shop.subscribe("starter")
    shop.advance(FEB_1_BERLIN)
    run = runs(shop)[0]
    assert run["id"].startswith("brun_") and run["object"] == "billing_run"
    assert run["trigger"] == "test_clock" and run["test_clock_id"] == shop.clock_id
    got = client.get(f"/v1/billing-runs/{run['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json == run
    foreign = client.get(f"/v1/billing-runs/{run['id']}", headers=other_tenant.headers)
    assert foreign.status_code == 404 and foreign.json["code"] == "billing_run_not_found"
    listed = client.get("/v1/billing-runs", headers=other_tenant.headers)
    assert listed.status_code == 200 and listed.json["data"] == []
