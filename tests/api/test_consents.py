"""Consents (issue 8): `POST/GET /v1/customers/{id}/consents`, and their GDPR provider: the
`consents` export category and deletion on erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from compliance.export_schemas import ConsentExport
from compliance.providers import consents as consent_provider
from compliance.registry import ErasureContext, ExportContext, Subject
from saas.consents.models import Consent
from saas.extensions import db
from saas.kernel.tasks import tenant_session
from tests.conftest import CUSTOMER, TenantCtx


def customer(client: FlaskClient, t: TenantCtx) -> str:
    resp = client.post("/v1/customers", json=CUSTOMER, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def post(client: FlaskClient, t: TenantCtx, customer_id: str, **body: Any) -> Any:
    return client.post(f"/v1/customers/{customer_id}/consents", json=body, headers=t.headers)


def test_consent_is_recorded_and_listed_when_given(client: FlaskClient, tenant: TenantCtx) -> None:
    cid = customer(client, tenant)
    resp = post(
        client,
        tenant,
        cid,
        purpose="newsletter",
        granted=True,
        source="signup_form",
        text_version="2026-01",
        ip_address="203.0.113.7",
    )
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["id"].startswith("cons_") and body["object"] == "consent"
    assert (body["customer_id"], body["purpose"], body["granted"]) == (cid, "newsletter", True)
    assert (body["source"], body["text_version"], body["ip_address"]) == (
        "signup_form",
        "2026-01",
        "203.0.113.7",
    )
    assert body["withdrawn_at"] is None and body["given_at"]
    listed = client.get(f"/v1/customers/{cid}/consents", headers=tenant.headers)
    assert listed.status_code == 200
    assert listed.json["object"] == "list" and listed.json["data"] == [body]


def test_consent_is_withdrawn_and_kept_as_proof_when_granted_is_false(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    cid = customer(client, tenant)
    given = post(client, tenant, cid, purpose="newsletter", granted=True).json
    resp = post(client, tenant, cid, purpose="newsletter", granted=False, source="portal")
    assert resp.status_code == 201, resp.json
    assert resp.json["id"] == given["id"]
    assert resp.json["granted"] is False and resp.json["withdrawn_at"] is not None
    assert resp.json["withdrawal_source"] == "portal"
    again = post(client, tenant, cid, purpose="newsletter", granted=False)
    assert again.status_code == 409 and again.json["code"] == "consent_not_given"
    # consenting again opens a new record; the withdrawn one stays
    renewed = post(client, tenant, cid, purpose="newsletter", granted=True).json
    listed = client.get(f"/v1/customers/{cid}/consents", headers=tenant.headers).json["data"]
    assert [c["id"] for c in listed] == [renewed["id"], given["id"]]
    assert [c["granted"] for c in listed] == [True, False]


def test_same_consent_twice_changes_nothing_when_wording_is_unchanged(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    cid = customer(client, tenant)
    first = post(client, tenant, cid, purpose="newsletter", granted=True, text_version="v1").json
    second = post(client, tenant, cid, purpose="newsletter", granted=True, text_version="v1").json
    assert second == first
    third = post(client, tenant, cid, purpose="newsletter", granted=True, text_version="v2").json
    assert third["id"] != first["id"]
    listed = client.get(f"/v1/customers/{cid}/consents", headers=tenant.headers).json["data"]
    assert [(c["text_version"], c["granted"]) for c in listed] == [("v2", True), ("v1", False)]
    assert listed[1]["withdrawal_source"] == "renewed"


@pytest.mark.parametrize(
    "body",
    [
        {"granted": True},
        {"purpose": "newsletter"},
        {"purpose": "Newsletter!", "granted": True},
        {"purpose": "x" * 65, "granted": True},
        {"purpose": "newsletter", "granted": True, "ip_address": "not-an-ip"},
        {"purpose": "newsletter", "granted": True, "source": "Web Form"},
        {"purpose": "newsletter", "granted": True, "extra": 1},
    ],
)
def test_invalid_consent_is_refused_when_posted(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any]
) -> None:
    cid = customer(client, tenant)
    resp = client.post(f"/v1/customers/{cid}/consents", json=body, headers=tenant.headers)
    assert resp.status_code == 422, resp.json
    assert resp.json["code"] == "validation_failed"
    assert client.get(f"/v1/customers/{cid}/consents", headers=tenant.headers).json["data"] == []


def test_unknown_customer_is_not_found_when_recording_consent(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    resp = post(client, tenant, "cus_doesnotexist", purpose="newsletter", granted=True)
    assert resp.status_code == 404 and resp.json["code"] == "customer_not_found"


def test_consents_need_the_customers_scope_when_written(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    from saas.auth.services import create_api_key
    from saas.kernel import tenancy
    from saas.kernel.clock import utcnow

    cid = customer(client, tenant)
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        _, reader = create_api_key(
            db.session, tenant_id=tenant.tenant_id, now=utcnow(), scopes=["customers:read"]
        )
        _, billing = create_api_key(
            db.session, tenant_id=tenant.tenant_id, now=utcnow(), scopes=["billing:write"]
        )
        db.session.commit()
        db.session.remove()
    url = f"/v1/customers/{cid}/consents"
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert client.get(url, headers=as_reader).status_code == 200
    body = {"purpose": "newsletter", "granted": True}
    assert client.post(url, json=body, headers=as_reader).status_code == 403
    assert client.get(url, headers={"Authorization": f"Bearer {billing}"}).status_code == 403


def test_consents_are_exported_and_erased_by_their_gdpr_provider_when_requested(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    cid = customer(client, tenant)
    keep = customer(client, tenant)
    post(client, tenant, cid, purpose="newsletter", granted=True, ip_address="203.0.113.7")
    post(client, tenant, cid, purpose="newsletter", granted=False)
    post(client, tenant, cid, purpose="product_updates", granted=True, text_version="v3")
    post(client, tenant, keep, purpose="newsletter", granted=True)
    subject = Subject(tenant.tenant_id, cid, False, CUSTOMER["email"], (CUSTOMER["email"],))
    now = datetime(2026, 11, 21, tzinfo=UTC)
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        part = consent_provider.export(ExportContext(session, subject, now, ()))
        records = ConsentExport(many=True).load(
            ConsentExport(many=True).dump(part.records["consents"])
        )
        assert [(r["purpose"], r["withdrawn_at"] is None) for r in records] == [
            ("newsletter", False),
            ("product_updates", True),
        ]
        assert "ip_address" not in records[0]  # the export schema's fields only
        report = consent_provider.erase(ErasureContext(session, subject, now, "system", None, ()))
        session.commit()
        assert report.actions == {"consent_deleted": 2}
        left = session.scalars(sa.select(Consent.customer_id)).all()
    assert left == [keep]
