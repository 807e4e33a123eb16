"""Catalog API: products, plans, prices; price versioning once a price has subscribers.

The `create_*` functions at the top are the catalog factories other test modules import.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import CUSTOMER, TenantCtx


def create_product(client: FlaskClient, t: TenantCtx, **fields: Any) -> dict[str, Any]:
    resp = client.post("/v1/products", json={"name": "abowerk Cloud", **fields}, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def create_plan(
    client: FlaskClient, t: TenantCtx, product_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    product_id = product_id or create_product(client, t)["id"]
    body = {"product_id": product_id, "name": "Pro", **fields}
    resp = client.post("/v1/plans", json=body, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def create_price(
    client: FlaskClient, t: TenantCtx, plan_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    plan_id = plan_id or create_plan(client, t)["id"]
    body = {"plan_id": plan_id, "unit_amount": 4900, "interval": "month", **fields}
    resp = client.post("/v1/prices", json=body, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def test_catalog_objects_are_created_with_defaults_when_only_required_fields_sent(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    product = create_product(client, tenant)
    assert product["id"].startswith("prod_") and product["object"] == "product"
    assert product["status"] == "active" and product["livemode"] is False
    plan = create_plan(client, tenant, product["id"])
    assert plan["id"].startswith("plan_")
    assert plan["trial_days"] == 0
    assert plan["trial_end_behavior"] == "cancel"
    assert plan["tax_kind"] == "electronically_supplied_service"
    price = create_price(client, tenant, plan["id"])
    assert price["id"].startswith("price_")
    assert price["currency"] == "EUR" and price["unit_amount"] == 4900
    assert price["interval"] == "month" and price["per_seat"] is False
    assert price["version"] == 1 and price["lineage_id"] == price["id"]
    assert price["previous_price_id"] is None and price["has_subscribers"] is False
    for url, obj in (
        (f"/v1/products/{product['id']}", product),
        (f"/v1/plans/{plan['id']}", plan),
        (f"/v1/prices/{price['id']}", price),
    ):
        got = client.get(url, headers=tenant.headers)
        assert got.status_code == 200
        assert got.json == obj


def test_tiered_plans_are_listed_per_product_when_filtered(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    product = create_product(client, tenant)
    other = create_product(client, tenant, name="Andere Software")
    ids = [
        create_plan(client, tenant, product["id"], name=name, trial_days=14)["id"]
        for name in ("Starter", "Pro", "Business")
    ]
    create_plan(client, tenant, other["id"])
    listing = client.get(f"/v1/plans?product_id={product['id']}", headers=tenant.headers).json
    assert [p["id"] for p in listing["data"]] == ids[::-1]
    assert {p["name"] for p in listing["data"]} == {"Starter", "Pro", "Business"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"unit_amount": 49.5}, "unit_amount"),
        ({"unit_amount": "4900"}, "unit_amount"),
        ({"unit_amount": -1}, "unit_amount"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"interval": "week"}, "interval"),
        ({"per_seat": "maybe"}, "per_seat"),
        ({"metadata": {"k": 1}}, "metadata"),
    ],
    ids=["float", "string", "negative", "lowercase", "unknown-currency", "week", "bool", "meta"],
)
def test_create_price_is_rejected_with_field_error_when_input_is_invalid(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any], field: str
) -> None:
    plan = create_plan(client, tenant)
    payload = {"plan_id": plan["id"], "unit_amount": 4900, "interval": "month", **body}
    resp = client.post("/v1/prices", json=payload, headers=tenant.headers)
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == "validation_failed"
    assert field in resp.json["errors"]
    assert client.get("/v1/prices", headers=tenant.headers).json["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trial_days": -1}, "trial_days"),
        ({"trial_days": 731}, "trial_days"),
        ({"trial_end_behavior": "explode"}, "trial_end_behavior"),
        ({"tax_kind": "Not Snake"}, "tax_kind"),
        ({"name": ""}, "name"),
    ],
)
def test_create_plan_is_rejected_with_field_error_when_input_is_invalid(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any], field: str
) -> None:
    product = create_product(client, tenant)
    resp = client.post(
        "/v1/plans",
        json={"product_id": product["id"], "name": "Pro", **body},
        headers=tenant.headers,
    )
    assert resp.status_code == 422
    assert field in resp.json["errors"]


def test_archived_parent_refuses_children_when_creating(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    product = create_product(client, tenant)
    plan = create_plan(client, tenant, product["id"])
    resp = client.patch(
        f"/v1/plans/{plan['id']}", json={"status": "archived"}, headers=tenant.headers
    )
    assert resp.status_code == 200 and resp.json["status"] == "archived"
    resp = client.post(
        "/v1/prices",
        json={"plan_id": plan["id"], "unit_amount": 100, "interval": "month"},
        headers=tenant.headers,
    )
    assert resp.status_code == 409 and resp.json["code"] == "plan_archived"
    client.patch(
        f"/v1/products/{product['id']}", json={"status": "archived"}, headers=tenant.headers
    )
    resp = client.post(
        "/v1/plans", json={"product_id": product["id"], "name": "X"}, headers=tenant.headers
    )
    assert resp.status_code == 409 and resp.json["code"] == "product_archived"
    archived = client.get("/v1/products?status=archived", headers=tenant.headers).json["data"]
    assert [p["id"] for p in archived] == [product["id"]]


def test_unknown_catalog_ids_get_404_with_their_code_when_missing(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    for url, code in (
        ("/v1/products/prod_nope", "product_not_found"),
        ("/v1/plans/plan_nope", "plan_not_found"),
        ("/v1/prices/price_nope", "price_not_found"),
    ):
        resp = client.get(url, headers=tenant.headers)
        assert resp.status_code == 404 and resp.json["code"] == code
    resp = client.post(
        "/v1/prices",
        json={"plan_id": "plan_nope", "unit_amount": 1, "interval": "year"},
        headers=tenant.headers,
    )
    assert resp.status_code == 404 and resp.json["code"] == "plan_not_found"


def test_price_amount_changes_in_place_when_price_has_no_subscribers(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    price = create_price(client, tenant)
    resp = client.patch(
        f"/v1/prices/{price['id']}",
        json={"unit_amount": 5900, "nickname": "Pro monthly"},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["id"] == price["id"]
    assert resp.json["unit_amount"] == 5900 and resp.json["version"] == 1
    assert resp.json["nickname"] == "Pro monthly"


def _subscribe(client: FlaskClient, t: TenantCtx, price_id: str) -> dict[str, Any]:
    customer = client.post("/v1/customers", json=CUSTOMER, headers=t.headers).json
    resp = client.post(
        "/v1/subscriptions",
        json={"customer_id": customer["id"], "price_id": price_id, "has_payment_method": True},
        headers=t.headers,
    )
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def test_price_amount_change_creates_new_version_when_price_has_subscribers(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    price = create_price(client, tenant)
    sub = _subscribe(client, tenant, price["id"])
    assert client.get(f"/v1/prices/{price['id']}", headers=tenant.headers).json["has_subscribers"]
    resp = client.patch(
        f"/v1/prices/{price['id']}", json={"unit_amount": 5900}, headers=tenant.headers
    )
    assert resp.status_code == 200, resp.json
    new = resp.json
    assert new["id"] != price["id"]
    assert new["version"] == 2 and new["lineage_id"] == price["id"]
    assert new["previous_price_id"] == price["id"]
    assert new["unit_amount"] == 5900 and new["status"] == "active"
    assert new["has_subscribers"] is False
    old = client.get(f"/v1/prices/{price['id']}", headers=tenant.headers).json
    assert old["unit_amount"] == 4900 and old["status"] == "archived"  # never changed
    # the subscriber keeps the terms it was sold; new subscribers cannot pick the old price
    assert (
        client.get(f"/v1/subscriptions/{sub['id']}", headers=tenant.headers).json["price_id"]
        == price["id"]
    )
    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json
    refused = client.post(
        "/v1/subscriptions",
        json={"customer_id": customer["id"], "price_id": price["id"]},
        headers=tenant.headers,
    )
    assert refused.status_code == 409 and refused.json["code"] == "price_archived"
    versions = client.get(f"/v1/prices?lineage_id={price['id']}", headers=tenant.headers).json[
        "data"
    ]
    assert sorted(v["version"] for v in versions) == [1, 2]


def test_price_terms_cannot_be_patched_when_they_are_currency_or_interval(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    price = create_price(client, tenant)
    for body in ({"currency": "USD"}, {"interval": "year"}, {"per_seat": True}):
        resp = client.patch(f"/v1/prices/{price['id']}", json=body, headers=tenant.headers)
        assert resp.status_code == 422, body


def test_catalog_needs_catalog_scope_when_key_is_limited(
    client: FlaskClient, make_tenant: Any
) -> None:
    limited = make_tenant("Lesend GmbH", scopes=["catalog:read"])
    assert client.get("/v1/products", headers=limited.headers).status_code == 200
    resp = client.post("/v1/products", json={"name": "x"}, headers=limited.headers)
    assert resp.status_code == 403 and resp.json["code"] == "insufficient_scope"
    other = make_tenant("Kunden GmbH", scopes=["customers:write"])
    assert client.get("/v1/prices", headers=other.headers).status_code == 403
