from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import TenantCtx


def _create(client: FlaskClient, tenant: TenantCtx, payload: dict[str, Any], **headers: str) -> Any:
    return client.post("/v1/customers", json=payload, headers={**tenant.headers, **headers})


def test_create_customer_returns_customer_when_input_is_valid(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    customer_payload["vat_id"] = "DE 811 907 980"
    customer_payload["is_business"] = True
    resp = _create(client, tenant, customer_payload)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["id"].startswith("cus_")
    assert body["object"] == "customer"
    assert body["livemode"] is False
    assert body["vat_id"] == "DE811907980"
    assert body["address"]["country"] == "DE"
    got = client.get(f"/v1/customers/{body['id']}", headers=tenant.headers)
    assert got.status_code == 200
    assert got.json == body


def test_greek_vat_id_is_normalised_to_el_when_given_with_gr_prefix(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    customer_payload["address"]["country"] = "GR"
    customer_payload["vat_id"] = "GR094259216"
    resp = _create(client, tenant, customer_payload)
    assert resp.status_code == 201, resp.json
    assert resp.json["vat_id"] == "EL094259216"


@pytest.mark.parametrize(
    ("mutate", "field", "code"),
    [
        (lambda p: p["address"].update(country="XX"), "address", "validation_failed"),
        (lambda p: p["address"].update(country="de"), "address", "validation_failed"),
        (lambda p: p.update(email="not-an-email"), "email", "validation_failed"),
        (lambda p: p.update(vat_id="DE123456789"), "vat_id", "validation_failed"),
        (lambda p: p.update(name=42), "name", "validation_failed"),
        (lambda p: p.update(unknown_field="x"), "unknown_field", "validation_failed"),
        (lambda p: p.pop("email"), "email", "validation_failed"),
        (lambda p: p.update(locale="german"), "locale", "validation_failed"),
        (lambda p: p.update(metadata={"k": 1}), "metadata", "validation_failed"),
    ],
    ids=[
        "unknown-country",
        "lowercase-country",
        "bad-email",
        "bad-vat-checksum",
        "wrong-type",
        "unknown-field",
        "missing-required",
        "bad-locale",
        "non-string-metadata",
    ],
)
def test_create_customer_is_rejected_with_field_error_when_input_is_invalid(
    client: FlaskClient,
    tenant: TenantCtx,
    customer_payload: dict[str, Any],
    mutate: Any,
    field: str,
    code: str,
) -> None:
    mutate(customer_payload)
    resp = _create(client, tenant, customer_payload)
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == code
    assert field in resp.json["errors"], resp.json
    listing = client.get("/v1/customers", headers=tenant.headers)
    assert listing.json["data"] == []  # nothing written


def test_malformed_json_gets_400_problem_when_body_is_not_json(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    resp = client.post(
        "/v1/customers",
        data='{"email": "a@b.de",',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == "malformed_json"


def test_oversized_body_gets_413_when_larger_than_limit(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    customer_payload["name"] = "x" * (2 * 1024 * 1024)
    resp = _create(client, tenant, customer_payload)
    assert resp.status_code == 413
    assert resp.json["code"] == "payload_too_large"


def test_list_paginates_newest_first_with_cursor_when_more_than_limit(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    ids = []
    for i in range(5):
        customer_payload["email"] = f"c{i}@example.de"
        ids.append(_create(client, tenant, customer_payload).json["id"])
    first = client.get("/v1/customers?limit=2", headers=tenant.headers).json
    assert [c["id"] for c in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    second = client.get(
        f"/v1/customers?limit=2&starting_after={first['data'][-1]['id']}", headers=tenant.headers
    ).json
    assert [c["id"] for c in second["data"]] == ids[::-1][2:4]
    last = client.get(
        f"/v1/customers?limit=2&starting_after={second['data'][-1]['id']}", headers=tenant.headers
    ).json
    assert [c["id"] for c in last["data"]] == ids[:1]
    assert last["has_more"] is False


def test_list_rejects_limit_when_out_of_range(client: FlaskClient, tenant: TenantCtx) -> None:
    resp = client.get("/v1/customers?limit=1000", headers=tenant.headers)
    assert resp.status_code == 422
    assert "limit" in resp.json["errors"]


def test_list_filters_by_email_when_given(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    _create(client, tenant, customer_payload)
    customer_payload["email"] = "other@example.de"
    _create(client, tenant, customer_payload)
    resp = client.get("/v1/customers?email=other@example.de", headers=tenant.headers)
    assert [c["email"] for c in resp.json["data"]] == ["other@example.de"]


def test_update_changes_only_sent_fields_when_patching(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    created = _create(client, tenant, customer_payload).json
    resp = client.patch(
        f"/v1/customers/{created['id']}",
        json={"name": "Erika Musterfrau", "metadata": {"crm": "42"}},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["name"] == "Erika Musterfrau"
    assert resp.json["email"] == created["email"]
    assert resp.json["metadata"] == {"crm": "42"}


def test_update_rejects_vat_id_when_invalid_for_stored_country(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    created = _create(client, tenant, customer_payload).json
    resp = client.patch(
        f"/v1/customers/{created['id']}", json={"vat_id": "DE000000000"}, headers=tenant.headers
    )
    assert resp.status_code == 422
    assert "vat_id" in resp.json["errors"]
    assert (
        client.get(f"/v1/customers/{created['id']}", headers=tenant.headers).json["vat_id"] is None
    )


def test_external_ref_conflict_gets_409_when_already_used(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    customer_payload["external_ref"] = "crm-1"
    assert _create(client, tenant, customer_payload).status_code == 201
    resp = _create(client, tenant, customer_payload)
    assert resp.status_code == 409
    assert resp.json["code"] == "external_ref_taken"


def test_unknown_customer_gets_404_problem_when_id_does_not_exist(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    resp = client.get("/v1/customers/cus_doesnotexist", headers=tenant.headers)
    assert resp.status_code == 404
    assert resp.json["code"] == "customer_not_found"
    assert resp.json["type"] == "urn:abowerk:problem:customer_not_found"


def test_test_mode_key_does_not_see_live_customers_when_modes_differ(
    client: FlaskClient, make_tenant: Any, customer_payload: dict[str, Any], app: Any
) -> None:
    from saas.auth.services import create_api_key
    from saas.extensions import db
    from saas.kernel import tenancy
    from saas.kernel.clock import utcnow

    test_ctx = make_tenant("Modus GmbH")
    with app.app_context():
        tenancy.set_tenant(db.session, test_ctx.tenant_id)
        _, live_secret = create_api_key(
            db.session, tenant_id=test_ctx.tenant_id, now=utcnow(), livemode=True
        )
        db.session.commit()
        db.session.remove()
    live_headers = {"Authorization": f"Bearer {live_secret}"}
    created = client.post("/v1/customers", json=customer_payload, headers=live_headers).json
    assert created["livemode"] is True
    assert client.get(f"/v1/customers/{created['id']}", headers=test_ctx.headers).status_code == 404
    assert client.get("/v1/customers", headers=test_ctx.headers).json["data"] == []
    assert client.get(f"/v1/customers/{created['id']}", headers=live_headers).status_code == 200


def test_response_carries_request_id_when_caller_sends_one(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    resp = client.get("/v1/customers", headers={**tenant.headers, "X-Request-Id": "trace-12345678"})
    assert resp.headers["X-Request-Id"] == "trace-12345678"
    generated = client.get("/v1/customers", headers=tenant.headers).headers["X-Request-Id"]
    assert generated.startswith("req_")


def test_access_log_is_json_with_request_id_when_request_is_served(
    client: FlaskClient, tenant: TenantCtx, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from saas.http.request_context import JsonFormatter

    with caplog.at_level(logging.INFO, logger="abowerk.access"):
        client.get("/v1/customers", headers={**tenant.headers, "X-Request-Id": "trace-abcdefgh"})
    records = [r for r in caplog.records if r.name == "abowerk.access"]
    assert records
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "trace-abcdefgh"
    assert line["status"] == 200
    assert line["tenant_id"] == tenant.tenant_id
    assert "erika" not in json.dumps(line).lower()


def test_no_row_is_written_when_a_request_fails_after_flushing(
    client: FlaskClient,
    tenant: TenantCtx,
    customer_payload: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # fault injection: the real service flushes its row, then the request fails
    from saas.customers import services

    original = services.create_customer

    def create_then_fail(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise services.ConflictError("simulated failure after flush")

    monkeypatch.setattr(services, "create_customer", create_then_fail)
    resp = _create(client, tenant, customer_payload)
    assert resp.status_code == 409
    monkeypatch.undo()
    assert client.get("/v1/customers", headers=tenant.headers).json["data"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Erika\x00Muster"), ("name", "Erika\x07"), ("address.city", "Ber\x1blin")],
)
def test_create_customer_refuses_control_characters_with_the_field_named(
    client: FlaskClient, tenant: TenantCtx, field: str, value: str
) -> None:
    # they could never be printed on an e-invoice (XML 1.0) or stored in PostgreSQL text
    body: dict[str, Any] = {"email": "erika@example.com", "name": "Erika Muster"}
    if field == "address.city":
        body["address"] = {"city": value, "country": "DE"}
    else:
        body[field] = value
    response = client.post("/v1/customers", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_failed"
    assert field.split(".", maxsplit=1)[0] in str(response.json["errors"])


def test_create_customer_keeps_tabs_and_line_breaks_and_non_latin_text(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    body = {
        "email": "jurgen@example.com",
        "name": "Jürgen Ølsen 山田",
        "address": {"line1": "Hof 2\nHinterhaus", "city": "Köln", "country": "DE"},
    }
    response = client.post("/v1/customers", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.json
    assert response.json["name"] == "Jürgen Ølsen 山田"
