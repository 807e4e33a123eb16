from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.extensions import db
from saas.http import idempotency
from saas.http.models import IdempotencyKey
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.conftest import TenantCtx, count_rows


def _post(client: FlaskClient, tenant: TenantCtx, payload: dict[str, Any], key: str) -> Any:
    return client.post(
        "/v1/customers", json=payload, headers={**tenant.headers, "Idempotency-Key": key}
    )


def test_repeated_post_returns_same_customer_and_one_row_when_key_and_body_match(
    client: FlaskClient,
    tenant: TenantCtx,
    customer_payload: dict[str, Any],
    app: Flask,
    owner_engine: sa.Engine,
) -> None:
    first = _post(client, tenant, customer_payload, "key-1")
    second = _post(client, tenant, customer_payload, "key-1")
    assert first.status_code == second.status_code == 201
    assert second.json == first.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_rows(app, owner_engine, "customers") == 1


def test_same_key_with_different_body_gets_422_when_reused(
    client: FlaskClient,
    tenant: TenantCtx,
    customer_payload: dict[str, Any],
    app: Flask,
    owner_engine: sa.Engine,
) -> None:
    assert _post(client, tenant, customer_payload, "key-2").status_code == 201
    customer_payload["email"] = "other@example.de"
    resp = _post(client, tenant, customer_payload, "key-2")
    assert resp.status_code == 422
    assert resp.json["code"] == "idempotency_key_reused"
    assert count_rows(app, owner_engine, "customers") == 1


def test_key_order_in_json_does_not_matter_when_replaying(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    first = _post(client, tenant, customer_payload, "key-order")
    reordered = dict(reversed(list(customer_payload.items())))
    second = _post(client, tenant, reordered, "key-order")
    assert second.json["id"] == first.json["id"]


def test_same_key_of_another_tenant_is_independent_when_reused(
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    customer_payload: dict[str, Any],
) -> None:
    a = _post(client, tenant, customer_payload, "shared-key")
    b = _post(client, other_tenant, customer_payload, "shared-key")
    assert a.status_code == b.status_code == 201
    assert a.json["id"] != b.json["id"]


def _claim(app: Flask, tenant: TenantCtx, key: str, *, locked_for: timedelta, body: bytes) -> None:
    """Leave a claim behind as a request still running (or one that died) would."""
    with app.test_request_context(
        "/v1/customers", method="POST", data=body, content_type="application/json"
    ) as ctx:
        claim = idempotency.Claim(tenant.tenant_id, False, key)
        granted, response = idempotency.begin(db.engine, ctx.request, claim, now=utcnow())
        assert granted is not None and response is None
        tenancy.set_tenant(db.session, tenant.tenant_id)
        db.session.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(locked_until=utcnow() + locked_for)
        )
        db.session.commit()
        db.session.remove()


def test_concurrent_duplicate_gets_409_when_first_request_is_still_in_progress(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any], app: Flask
) -> None:
    import json

    body = json.dumps(customer_payload).encode()
    _claim(app, tenant, "key-busy", locked_for=timedelta(seconds=30), body=body)
    resp = _post(client, tenant, customer_payload, "key-busy")
    assert resp.status_code == 409
    assert resp.json["code"] == "idempotency_request_in_progress"
    assert resp.headers["Retry-After"] == "1"


def test_retry_takes_over_when_first_request_died_and_lease_expired(
    client: FlaskClient,
    tenant: TenantCtx,
    customer_payload: dict[str, Any],
    app: Flask,
    owner_engine: sa.Engine,
) -> None:
    import json

    body = json.dumps(customer_payload).encode()
    _claim(app, tenant, "key-dead", locked_for=timedelta(seconds=-1), body=body)
    resp = _post(client, tenant, customer_payload, "key-dead")
    assert resp.status_code == 201
    assert count_rows(app, owner_engine, "customers") == 1


def test_validation_error_is_replayed_when_same_bad_request_is_retried(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    customer_payload["address"]["country"] = "XX"
    first = _post(client, tenant, customer_payload, "key-bad")
    second = _post(client, tenant, customer_payload, "key-bad")
    assert first.status_code == second.status_code == 422
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json["errors"] == first.json["errors"]


def test_invalid_key_gets_400_when_too_long(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    resp = _post(client, tenant, customer_payload, "k" * 256)
    assert resp.status_code == 400
    assert resp.json["code"] == "invalid_idempotency_key"


def test_expired_keys_are_purged_and_key_is_reusable_after_24_hours(
    client: FlaskClient,
    tenant: TenantCtx,
    customer_payload: dict[str, Any],
    app: Flask,
    owner_engine: sa.Engine,
) -> None:
    assert _post(client, tenant, customer_payload, "key-old").status_code == 201
    with app.app_context():
        assert idempotency.purge_expired(db.engine, now=utcnow() + timedelta(hours=23)) == 0
        assert count_rows(app, owner_engine, "idempotency_keys") == 1
        assert idempotency.purge_expired(db.engine, now=utcnow() + timedelta(hours=25)) == 1
    customer_payload["email"] = "new@example.de"
    assert _post(client, tenant, customer_payload, "key-old").status_code == 201
    assert count_rows(app, owner_engine, "customers") == 2


def test_patch_accepts_idempotency_key_when_updating(
    client: FlaskClient, tenant: TenantCtx, customer_payload: dict[str, Any]
) -> None:
    created = client.post("/v1/customers", json=customer_payload, headers=tenant.headers).json
    headers = {**tenant.headers, "Idempotency-Key": "patch-1"}
    one = client.patch(f"/v1/customers/{created['id']}", json={"name": "A"}, headers=headers)
    two = client.patch(f"/v1/customers/{created['id']}", json={"name": "A"}, headers=headers)
    assert one.status_code == two.status_code == 200
    assert two.headers["Idempotent-Replayed"] == "true"
