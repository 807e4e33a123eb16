"""Every route that takes an id, with every method, refuses another tenant's credential.

The cases are generated from the application's URL map at collection time: a new route with an
id parameter is covered automatically, and one whose parameter has no factory below fails
until someone says how to create the object it names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.test_catalog import create_plan, create_price, create_product
from tests.api.test_invoices import make_credit_note, make_draft, make_finalized, make_line
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, TenantCtx


def _make_customer(client: FlaskClient, owner: TenantCtx) -> str:
    resp = client.post("/v1/customers", json=CUSTOMER, headers=owner.headers)
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def _make_test_clock(client: FlaskClient, owner: TenantCtx) -> str:
    resp = client.post(
        "/v1/test_clocks", json={"frozen_time": "2026-01-01T00:00:00Z"}, headers=owner.headers
    )
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


# a closed local port: deliveries fail fast, without leaving the machine
_DEAD_RECEIVER = "http://127.0.0.1:9/hooks"


def _make_endpoint(client: FlaskClient, owner: TenantCtx) -> str:
    resp = client.post(
        "/v1/webhook_endpoints",
        json={"url": _DEAD_RECEIVER, "enabled_events": ["customer.*"]},
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def _make_delivery(client: FlaskClient, owner: TenantCtx) -> str:
    endpoint_id = _make_endpoint(client, owner)
    _make_customer(client, owner)
    resp = client.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=owner.headers)
    return str(resp.json["data"][0]["id"])


def _make_event(client: FlaskClient, owner: TenantCtx) -> str:
    _make_customer(client, owner)
    return str(client.get("/v1/events", headers=owner.headers).json["data"][0]["id"])


def _make_gdpr_request(client: FlaskClient, owner: TenantCtx) -> str:
    resp = client.post(
        "/v1/gdpr/requests",
        json={"customer_id": _make_customer(client, owner), "kind": "access"},
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def _make_restriction(client: FlaskClient, owner: TenantCtx) -> str:
    from tests.api.test_gdpr_requests import verified_request

    request_id = verified_request(client, owner, "restriction")["id"]
    resp = client.post(f"/v1/gdpr/requests/{request_id}/fulfil", json={}, headers=owner.headers)
    assert resp.status_code == 200, resp.json
    return str(resp.json["outcome"]["restriction_id"])


# URL parameter name -> how to create such an object for the owning tenant
def _make_payment(client: FlaskClient, owner: TenantCtx) -> str:
    invoice = make_finalized(client, owner)
    resp = client.post(
        f"/v1/invoices/{invoice['id']}/payments",
        json={"amount": 100, "currency": "EUR", "reference": "BANK-OWNER"},
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def _make_billing_run(client: FlaskClient, owner: TenantCtx) -> str:
    # advancing a test clock records a billing run (billing.runs), even with nothing due
    clock = _make_test_clock(client, owner)
    resp = client.post(
        f"/v1/test_clocks/{clock}/advance",
        json={"frozen_time": "2026-02-01T00:00:00Z"},
        headers=owner.headers,
    )
    assert resp.status_code == 200, resp.json
    runs = client.get("/v1/billing-runs", headers=owner.headers)
    assert runs.status_code == 200, runs.json
    return str(runs.json["data"][0]["id"])


ID_FACTORIES: dict[str, Callable[[FlaskClient, TenantCtx], str]] = {
    "customer_id": _make_customer,
    "product_id": lambda c, t: str(create_product(c, t)["id"]),
    "plan_id": lambda c, t: str(create_plan(c, t)["id"]),
    "price_id": lambda c, t: str(create_price(c, t)["id"]),
    "subscription_id": lambda c, t: str(create_subscription(c, t)["id"]),
    "test_clock_id": _make_test_clock,
    "endpoint_id": _make_endpoint,
    "delivery_id": _make_delivery,
    "event_id": _make_event,
    "invoice_id": lambda c, t: str(make_draft(c, t)["id"]),
    "line_id": make_line,
    "credit_note_id": lambda c, t: str(make_credit_note(c, t)["id"]),
    "gdpr_request_id": _make_gdpr_request,
    "restriction_id": _make_restriction,
    "payment_id": _make_payment,
    "run_id": _make_billing_run,
}

BODIES: dict[str, dict[str, Any]] = {"PATCH": {"name": "Intruder"}, "POST": {}, "PUT": {}}

# Routes whose body must be valid for the request to reach the object lookup (an invalid body
# is a 422 before anyone looks for the object): (method, rule) -> body
ROUTE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/prices/<price_id>"): {"nickname": "Intruder"},
    ("POST", "/v1/customers/<customer_id>/consents"): {"purpose": "newsletter", "granted": True},
    ("POST", "/v1/subscriptions/<subscription_id>/change"): {"quantity": 2},
    ("POST", "/v1/subscriptions/<subscription_id>/change/preview"): {"quantity": 2},
    ("POST", "/v1/subscriptions/<subscription_id>/payment_method"): {"has_payment_method": True},
    ("POST", "/v1/test_clocks/<test_clock_id>/advance"): {"frozen_time": "2027-01-01T00:00:00Z"},
    ("PATCH", "/v1/webhook_endpoints/<endpoint_id>"): {"description": "Intruder"},
    ("POST", "/v1/invoices/<invoice_id>/lines"): {"description": "Intruder", "unit_amount": 1},
    ("POST", "/v1/gdpr/requests/<gdpr_request_id>/verify_identity"): {
        "method": "tenant_attestation",
        "note": "Intruder",
    },
    ("POST", "/v1/gdpr/requests/<gdpr_request_id>/extend"): {"months": 1, "reason": "Intruder"},
    ("POST", "/v1/gdpr/requests/<gdpr_request_id>/reject"): {"reason": "Intruder"},
    ("POST", "/v1/gdpr/restrictions/<restriction_id>/legal_hold"): {"reason": "Intruder"},
    ("POST", "/v1/invoices/<invoice_id>/payments"): {
        "amount": 100,
        "currency": "EUR",
        "reference": "Intruder",
    },
}


def _routes() -> list[tuple[str, str, tuple[str, ...]]]:
    import tempfile

    from saas.app import create_app
    from tests.conftest import make_environ

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"ENVIRON": make_environ(f"sqlite:///{tmp}/routes.sqlite3", tmp)})
        cases = []
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/v1/") or not rule.arguments:
                continue
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                cases.append((rule.rule, method, tuple(sorted(rule.arguments))))
    return cases


ROUTES = _routes()


def test_url_map_has_routes_with_ids_when_collected() -> None:
    assert ROUTES, "no /v1 route with an id parameter found: the URL map was not enumerated"


@pytest.mark.parametrize(
    ("rule", "method", "arguments"), ROUTES, ids=[f"{m} {r}" for r, m, _ in ROUTES]
)
def test_other_tenants_object_is_not_found_when_route_takes_its_id(
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    rule: str,
    method: str,
    arguments: tuple[str, ...],
) -> None:
    missing = [a for a in arguments if a not in ID_FACTORIES]
    assert not missing, f"add a factory for {missing} to ID_FACTORIES in {__file__}"
    url = rule
    created = {}
    for arg in arguments:
        created[arg] = ID_FACTORIES[arg](client, tenant)
        url = url.replace(f"<{arg}>", created[arg])
    body = ROUTE_BODIES.get((method, rule), BODIES.get(method))
    resp = client.open(
        url,
        method=method,
        headers=other_tenant.headers,
        data=json.dumps(body) if body is not None else None,
        content_type="application/json" if body is not None else None,
    )
    assert resp.status_code in (403, 404), (method, url, resp.status_code, resp.json)
    text = resp.get_data(as_text=True)
    for object_id in created.values():
        assert object_id not in text or (resp.status_code == 404 and "no " in text)
    assert CUSTOMER["email"] not in text
    # the owner still sees the object unchanged
    own = client.get(
        rule.split("/<", maxsplit=1)[0] + "/" + created[arguments[0]], headers=tenant.headers
    )
    assert own.status_code == 200
    assert own.json.get("name") != "Intruder"
