from __future__ import annotations

import base64
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.auth.services import create_oauth_client, revoke_oauth_client
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.conftest import TenantCtx


def _client(app: Flask, tenant: TenantCtx, scopes: list[str] | None = None) -> tuple[str, str]:
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        client, secret = create_oauth_client(
            db.session, tenant_id=tenant.tenant_id, now=utcnow(), scopes=scopes
        )
        db.session.commit()
        client_id = client.client_id
        db.session.remove()
    return client_id, secret


def _token(http: FlaskClient, client_id: str, secret: str, scope: str | None = None) -> Any:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    return http.post("/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"})


def test_client_credentials_token_works_on_api_when_client_is_valid(
    client: FlaskClient, app: Flask, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    client_id, secret = _client(app, tenant)
    resp = _token(client, client_id, secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    token = resp.json["access_token"]
    assert resp.json["token_type"] == "Bearer"
    assert resp.json["expires_in"] == 3600
    assert resp.headers["Cache-Control"] == "no-store"
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/v1/customers", json=customer_payload, headers=headers)
    assert created.status_code == 201
    listing = client.get("/v1/customers", headers=tenant.headers)
    assert [c["id"] for c in listing.json["data"]] == [created.json["id"]]


def test_client_secret_post_is_accepted_when_credentials_are_in_the_form(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    client_id, secret = _client(app, tenant)
    resp = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_token_honours_scopes_when_client_is_read_only(
    client: FlaskClient, app: Flask, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    client_id, secret = _client(app, tenant, scopes=["customers:read"])
    token = _token(client, client_id, secret).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/customers", headers=headers).status_code == 200
    denied = client.post("/v1/customers", json=customer_payload, headers=headers)
    assert denied.status_code == 403
    assert denied.json["code"] == "insufficient_scope"


def test_requested_scope_narrows_token_when_client_asks_for_less(
    client: FlaskClient, app: Flask, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    client_id, secret = _client(app, tenant)
    resp = _token(client, client_id, secret, scope="customers:read")
    assert resp.json["scope"] == "customers:read"
    headers = {"Authorization": f"Bearer {resp.json['access_token']}"}
    assert client.post("/v1/customers", json=customer_payload, headers=headers).status_code == 403


def test_wrong_secret_gets_invalid_client_when_requesting_token(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    client_id, _ = _client(app, tenant)
    resp = _token(client, client_id, "cs_wrong")
    assert resp.status_code == 401
    assert resp.json["error"] == "invalid_client"


def test_token_is_refused_when_client_was_revoked_after_issuance(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    client_id, secret = _client(app, tenant)
    token = _token(client, client_id, secret).json["access_token"]
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        revoke_oauth_client(db.session, client_id=client_id, now=utcnow())
        db.session.commit()
    resp = client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.json["code"] == "oauth_client_revoked"
    assert _token(client, client_id, secret).status_code == 401


def test_token_is_refused_when_expired_or_tampered(
    client: FlaskClient, app: Flask, tenant: TenantCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, secret = _client(app, tenant)
    token = _token(client, client_id, secret).json["access_token"]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}AA"
    assert (
        client.get("/v1/customers", headers={"Authorization": f"Bearer {tampered}"}).status_code
        == 401
    )

    import time

    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3601)
    resp = client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.json["code"] == "invalid_access_token"


def test_token_of_one_tenant_cannot_read_another_tenants_customer(
    client: FlaskClient,
    app: Flask,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    customer_payload: dict[str, Any],
) -> None:
    created = client.post("/v1/customers", json=customer_payload, headers=tenant.headers).json
    client_id, secret = _client(app, other_tenant)
    token = _token(client, client_id, secret).json["access_token"]
    resp = client.get(
        f"/v1/customers/{created['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 404


def test_token_request_for_scope_beyond_client_is_invalid_scope_when_asked(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    client_id, secret = _client(app, tenant, scopes=["customers:read"])
    resp = _token(client, client_id, secret, scope="customers:write")
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_scope"


def test_token_is_refused_when_tenant_was_suspended_after_issuance(
    client: FlaskClient, app: Flask, tenant: TenantCtx, owner_engine: Any
) -> None:
    client_id, secret = _client(app, tenant)
    token = _token(client, client_id, secret).json["access_token"]
    with owner_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE tenants SET status = 'suspended' WHERE id = :t"),
            {"t": tenant.tenant_id},
        )
    resp = client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.json["code"] == "tenant_inactive"
