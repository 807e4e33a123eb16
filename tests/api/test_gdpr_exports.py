"""Access and portability exports: the ZIP, its single-use expiring link, expiry clean-up."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from compliance.export_schemas import CATEGORIES, Manifest
from compliance.models import GdprExport, GdprExportLink
from saas.extensions import db
from saas.gdpr.runtime import compliance_config
from saas.gdpr.tasks import sweep_tenant
from saas.kernel.clock import utcnow
from tests.api.test_gdpr_requests import new_customer, verified_request
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, TenantCtx


def fulfil(client: FlaskClient, t: TenantCtx, request_id: str) -> dict[str, Any]:
    resp = client.post(f"/v1/gdpr/requests/{request_id}/fulfil", json={}, headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def download(client: FlaskClient, url: str) -> Any:
    path = url.split("://", 1)[-1].split("/", 1)[1]
    return client.get("/" + path)  # no Authorization header: the link is the credential


def _export_for_customer_with_history(client: FlaskClient, t: TenantCtx, kind: str) -> Any:
    client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["customer.*"]},
        headers=t.headers,
    )
    customer_id = new_customer(client, t, vat_id="DE136695976")
    create_subscription(client, t, customer_id=customer_id)
    req = verified_request(client, t, kind, customer_id)
    done = fulfil(client, t, req["id"])
    return req, done


@pytest.mark.parametrize("kind", ["access", "portability"])
def test_export_zip_holds_every_category_when_downloaded_once(
    client: FlaskClient, tenant: TenantCtx, kind: str
) -> None:
    req, done = _export_for_customer_with_history(client, tenant, kind)
    assert done["state"] == "completed"
    link = done["download"]
    assert link["export_id"] == done["outcome"]["export_id"]
    resp = download(client, link["url"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/zip"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "attachment" in resp.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(resp.get_data()))
    manifest = json.loads(archive.read("manifest.json"))
    Manifest().load(manifest)
    assert manifest["request_id"] == req["id"]
    assert manifest["request_kind"] == kind
    assert manifest["controller"] == "Muster GmbH"
    for category in CATEGORIES:
        rows = json.loads(archive.read(category.file))
        category.schema(many=True).load(rows)  # valid against the export schema
    profile = json.loads(archive.read("profile.json"))
    assert profile[0]["email"] == CUSTOMER["email"]
    assert json.loads(archive.read("addresses.json"))[0]["line1"] == "Hauptstr. 1"
    vat = json.loads(archive.read("vat_id_checks.json"))
    assert vat[0]["vat_id"] == "DE136695976"
    subs = json.loads(archive.read("subscriptions.json"))
    assert subs[0]["history"][0]["event"] == "create"
    assert subs[0]["history"][0]["actor"] == "tenant"  # the credential id is masked
    deliveries = json.loads(archive.read("webhook_deliveries.json"))
    assert deliveries[0]["event_type"] == "customer.created"
    assert deliveries[0]["endpoint_host"] == "127.0.0.1"
    audit = json.loads(archive.read("audit_entries.json"))
    assert "gdpr.request.created" in [a["action"] for a in audit]
    assert json.loads(archive.read("data_subject_requests.json"))[0]["request_id"] == req["id"]

    again = download(client, link["url"])
    assert again.status_code == 409
    assert again.json["code"] == "download_link_used"


def test_export_file_is_private_to_the_service_when_stored(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    _, done = _export_for_customer_with_history(client, tenant, "access")
    path = compliance_config(app).export_path(tenant.tenant_id, done["outcome"]["export_id"])
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_link_works_once_when_issued_for_a_kept_export(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    req, done = _export_for_customer_with_history(client, tenant, "access")
    assert download(client, done["download"]["url"]).status_code == 200
    resp = client.post(
        f"/v1/gdpr/requests/{req['id']}/download_link", json={}, headers=tenant.headers
    )
    assert resp.status_code == 201, resp.json
    assert download(client, resp.json["url"]).status_code == 200
    assert download(client, resp.json["url"]).status_code == 409


@pytest.mark.parametrize("token", ["nonsense", "eyJ0IjoidGVuIiwibCI6Imd4bCJ9.AAAA"])
def test_forged_link_is_not_found_when_downloaded(client: FlaskClient, token: str) -> None:
    resp = client.get(f"/downloads/gdpr/{token}")
    assert resp.status_code == 404
    assert resp.json["code"] == "download_link_invalid"


def test_expired_link_is_refused_and_the_sweeper_deletes_the_file_when_expired(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    req, done = _export_for_customer_with_history(client, tenant, "access")
    past = utcnow() - timedelta(minutes=1)
    with owner_engine.begin() as conn:
        conn.execute(sa.update(GdprExport.__table__).values(expires_at=past))
        conn.execute(sa.update(GdprExportLink.__table__).values(expires_at=past))
    resp = download(client, done["download"]["url"])
    assert resp.status_code == 409
    assert resp.json["code"] == "download_link_expired"
    with owner_engine.connect() as conn:  # refusing changed nothing: the link is unused
        assert conn.execute(sa.select(GdprExportLink.__table__.c.used_at)).scalar() is None

    cfg = compliance_config(app)
    path = cfg.export_path(tenant.tenant_id, done["outcome"]["export_id"])
    assert path.exists()
    with app.app_context():
        report = sweep_tenant(db.engine, cfg, tenant.tenant_id, now=utcnow())
    assert report.exports_deleted == 1
    assert not path.exists()
    reissue = client.post(
        f"/v1/gdpr/requests/{req['id']}/download_link", json={}, headers=tenant.headers
    )
    assert reissue.status_code == 409
    assert reissue.json["code"] == "gdpr_export_not_available"


def test_sweep_command_runs_for_every_tenant_when_invoked(app: Flask, tenant: TenantCtx) -> None:
    result = app.test_cli_runner().invoke(args=["gdpr", "sweep"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["documents_redacted"] == 0
