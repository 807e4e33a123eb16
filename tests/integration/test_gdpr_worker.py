"""The GDPR worker tasks: the periodic ticks fan out per tenant; the sweep is logged."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from compliance.models import GdprExport
from saas.gdpr.runtime import compliance_config
from saas.gdpr.tasks import task
from saas.kernel.clock import utcnow
from tests.api.test_gdpr_exports import fulfil
from tests.api.test_gdpr_requests import create_request, verified_request
from tests.conftest import TenantCtx


def test_sweep_tick_deletes_expired_exports_of_every_tenant_and_logs_it_when_run(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    owner_engine: sa.Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    paths = []
    for t in (tenant, other_tenant):
        done = fulfil(client, t, verified_request(client, t, "portability")["id"])
        paths.append(compliance_config(app).export_path(t.tenant_id, done["outcome"]["export_id"]))
    with owner_engine.begin() as conn:
        conn.execute(sa.update(GdprExport.__table__).values(expires_at=utcnow() - timedelta(1)))
    assert all(p.exists() for p in paths)
    with caplog.at_level(logging.INFO, logger="abowerk.gdpr"), app.app_context():
        task("gdpr_sweep_tick")()
    assert not any(p.exists() for p in paths)
    messages = [r.getMessage() for r in caplog.records if r.name == "abowerk.gdpr"]
    assert messages.count("export expired and deleted") == 2
    for record in caplog.records:
        assert "example.de" not in str(getattr(record, "fields", ""))


def test_deadline_tick_announces_due_soon_requests_when_run(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    create_request(client, tenant, received_at=(utcnow() - timedelta(days=28)).isoformat())
    with app.app_context():
        task("gdpr_deadlines_tick")()
    types = [e["type"] for e in client.get("/v1/events", headers=tenant.headers).json["data"]]
    assert "gdpr.request.due_soon" in types
