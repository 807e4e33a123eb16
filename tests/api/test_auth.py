from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from saas.auth.services import create_api_key, revoke_api_key
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.conftest import TenantCtx


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "authentication_required"),
        ({"Authorization": "Basic Zm9vOmJhcg=="}, "authentication_required"),
        ({"Authorization": "Bearer "}, "authentication_required"),
        ({"Authorization": "Bearer sk_test_doesnotexist"}, "invalid_api_key"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid_access_token"),
    ],
    ids=["missing", "wrong-scheme", "empty", "unknown-key", "garbage-token"],
)
def test_request_gets_401_when_credential_is_missing_or_invalid(
    client: FlaskClient, headers: dict[str, str], code: str
) -> None:
    resp = client.get("/v1/customers", headers=headers)
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == code


def test_revoked_key_gets_401_when_used(client: FlaskClient, tenant: TenantCtx, app: Flask) -> None:
    assert client.get("/v1/customers", headers=tenant.headers).status_code == 200
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        revoke_api_key(db.session, key_id=tenant.api_key_id, now=utcnow())
        db.session.commit()
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.status_code == 401
    assert resp.json["code"] == "api_key_revoked"


def test_expired_key_gets_401_when_used_after_expiry(
    client: FlaskClient, tenant: TenantCtx, app: Flask
) -> None:
    from saas.auth.models import ApiKey

    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        key = db.session.get(ApiKey, (tenant.tenant_id, tenant.api_key_id))
        assert key is not None
        key.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.status_code == 401
    assert resp.json["code"] == "api_key_expired"


def test_key_records_last_used_time_when_used(
    client: FlaskClient, tenant: TenantCtx, app: Flask
) -> None:
    from saas.auth.models import ApiKey

    client.get("/v1/customers", headers=tenant.headers)
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        key = db.session.get(ApiKey, (tenant.tenant_id, tenant.api_key_id))
        assert key is not None
        assert key.last_used_at is not None


def test_key_is_stored_only_as_hash_prefix_and_last4_when_created(
    tenant: TenantCtx, owner_engine: Any
) -> None:
    with owner_engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT prefix, last4, secret_hash FROM api_keys").one()
    assert row.prefix == "sk_test_"
    assert row.last4 == tenant.api_key[-4:]
    assert tenant.api_key not in row.secret_hash
    assert len(row.secret_hash) == 64


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        (["customers:read"], "GET", True),
        (["customers:read"], "POST", False),
        (["customers:write"], "GET", True),
        (["customers:write"], "POST", True),
        (["keys:write"], "GET", False),
        (["*:read"], "POST", False),
        (["*:write"], "POST", True),
    ],
)
def test_scope_decides_access_when_key_has_limited_scopes(
    client: FlaskClient,
    make_tenant: Any,
    customer_payload: dict[str, Any],
    scopes: list[str],
    method: str,
    allowed: bool,
) -> None:
    ctx = make_tenant("Scope GmbH", scopes=scopes)
    if method == "GET":
        resp = client.get("/v1/customers", headers=ctx.headers)
    else:
        resp = client.post("/v1/customers", json=customer_payload, headers=ctx.headers)
    if allowed:
        assert resp.status_code in (200, 201), resp.json
    else:
        assert resp.status_code == 403
        assert resp.json["code"] == "insufficient_scope"


def test_unknown_scope_is_refused_when_creating_a_key(tenant: TenantCtx, app: Flask) -> None:
    from saas.kernel.errors import ValidationFailedError

    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        with pytest.raises(ValidationFailedError):
            create_api_key(
                db.session, tenant_id=tenant.tenant_id, now=utcnow(), scopes=["invoices:admin"]
            )
        db.session.rollback()


def test_suspended_tenant_gets_401_when_its_key_is_used(
    client: FlaskClient, tenant: TenantCtx, owner_engine: Any
) -> None:
    with owner_engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE tenants SET status = 'suspended' WHERE id = %s"
            if conn.dialect.name == "postgresql"
            else "UPDATE tenants SET status = 'suspended' WHERE id = ?",
            (tenant.tenant_id,),
        )
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.status_code == 401
    assert resp.json["code"] == "tenant_inactive"


def test_other_tenants_customer_is_404_and_absent_from_list_when_key_differs(
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    customer_payload: dict[str, Any],
) -> None:
    created = client.post("/v1/customers", json=customer_payload, headers=tenant.headers).json
    assert (
        client.get(f"/v1/customers/{created['id']}", headers=other_tenant.headers).status_code
        == 404
    )
    assert client.get("/v1/customers", headers=other_tenant.headers).json["data"] == []
    patched = client.patch(
        f"/v1/customers/{created['id']}", json={"name": "Hijack"}, headers=other_tenant.headers
    )
    assert patched.status_code == 404
    assert (
        client.get(f"/v1/customers/{created['id']}", headers=tenant.headers).json["name"]
        == (customer_payload["name"])
    )
