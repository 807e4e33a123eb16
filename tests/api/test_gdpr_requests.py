"""Data subject requests: states, deadlines and extensions, identity, overdue list, webhooks.

`new_customer`, `create_request` and `verified_request` are the factories the other GDPR test
modules import.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from compliance.audit import AuditEntry, derive_hmac_key, subject_hmac
from saas.extensions import db
from saas.gdpr.tasks import deadlines_for_tenant
from saas.kernel.clock import utcnow
from tests.conftest import CUSTOMER, TenantCtx, count_rows


def new_customer(client: FlaskClient, t: TenantCtx, **fields: Any) -> str:
    resp = client.post("/v1/customers", json={**CUSTOMER, **fields}, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def create_request(
    client: FlaskClient,
    t: TenantCtx,
    kind: str = "access",
    customer_id: str | None = None,
    **body: Any,
) -> dict[str, Any]:
    customer_id = customer_id or new_customer(client, t)
    resp = client.post(
        "/v1/gdpr/requests",
        json={"customer_id": customer_id, "kind": kind, **body},
        headers=t.headers,
    )
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def verified_request(
    client: FlaskClient, t: TenantCtx, kind: str = "access", customer_id: str | None = None
) -> dict[str, Any]:
    req = create_request(client, t, kind, customer_id)
    resp = client.post(
        f"/v1/gdpr/requests/{req['id']}/verify_identity",
        json={"method": "tenant_attestation", "note": "asked from the registered address"},
        headers=t.headers,
    )
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


def _events(client: FlaskClient, t: TenantCtx) -> list[dict[str, Any]]:
    return list(client.get("/v1/events?limit=100", headers=t.headers).json["data"])


def test_request_is_received_with_a_one_month_deadline_when_created(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    received = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    req = create_request(client, tenant, "erasure", received_at=received.isoformat())
    assert req["state"] == "received"
    assert req["kind"] == "erasure"
    assert req["object"] == "gdpr_request"
    # 31 January (Berlin) + one month ends with 28 February: late from 1 March, local midnight
    assert datetime.fromisoformat(req["due_at"]) == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert req["overdue"] is True  # that deadline is long gone
    assert req["created_by"] == tenant.api_key_id
    assert next(e["type"] for e in _events(client, tenant)) == "gdpr.request.created"


def test_request_for_another_tenants_customer_is_not_found_when_created(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    owner_engine: sa.Engine,
) -> None:
    foreign = new_customer(client, other_tenant)
    resp = client.post(
        "/v1/gdpr/requests",
        json={"customer_id": foreign, "kind": "erasure"},
        headers=tenant.headers,
    )
    assert resp.status_code == 404
    assert resp.json["code"] == "customer_not_found"
    assert count_rows(app, owner_engine, "gdpr_requests") == 0
    assert count_rows(app, owner_engine, "audit_entries") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "deletion"}, "kind"),
        ({"kind": "access", "received_at": "2999-01-01T00:00:00Z"}, "received_at"),
        ({"kind": "access", "received_at": "2026-01-01T00:00:00"}, "received_at"),  # naive
    ],
)
def test_request_is_refused_with_a_field_error_when_input_is_invalid(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any], field: str
) -> None:
    customer_id = new_customer(client, tenant)
    resp = client.post(
        "/v1/gdpr/requests", json={"customer_id": customer_id, **body}, headers=tenant.headers
    )
    assert resp.status_code == 422, resp.json
    assert field in resp.json["errors"]


def test_identity_is_recorded_with_who_and_how_when_the_tenant_attests_it(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    req = create_request(client, tenant)
    pending = client.post(
        f"/v1/gdpr/requests/{req['id']}/request_identity", json={}, headers=tenant.headers
    )
    assert pending.json["state"] == "identity_pending"
    verified = client.post(
        f"/v1/gdpr/requests/{req['id']}/verify_identity",
        json={"method": "tenant_attestation", "note": "called back on the registered number"},
        headers=tenant.headers,
    ).json
    assert verified["state"] == "in_progress"
    assert verified["verification_method"] == "tenant_attestation"
    assert verified["verified_by"] == tenant.api_key_id
    assert verified["verification_note"] == "called back on the registered number"
    types = [e["type"] for e in _events(client, tenant)]
    assert {"gdpr.request.identity_pending", "gdpr.request.in_progress"} <= set(types)
    # webhooks carry ids and states, never the free text the tenant typed
    for event in _events(client, tenant):
        assert "registered number" not in str(event["data"])


def test_portal_verification_is_refused_when_claimed_through_the_api(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    req = create_request(client, tenant)
    resp = client.post(
        f"/v1/gdpr/requests/{req['id']}/verify_identity",
        json={"method": "portal_session", "note": "trust me"},
        headers=tenant.headers,
    )
    assert resp.status_code == 422
    assert (
        client.get(f"/v1/gdpr/requests/{req['id']}", headers=tenant.headers).json["state"]
        == "received"
    )


def test_fulfilling_is_refused_and_nothing_changes_when_identity_is_not_verified(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    req = create_request(client, tenant, "erasure")
    resp = client.post(f"/v1/gdpr/requests/{req['id']}/fulfil", json={}, headers=tenant.headers)
    assert resp.status_code == 409
    assert resp.json["code"] == "invalid_gdpr_request_transition"
    after = client.get(f"/v1/gdpr/requests/{req['id']}", headers=tenant.headers).json
    assert after == req
    customer = client.get(f"/v1/customers/{req['customer_id']}", headers=tenant.headers).json
    assert customer["email"] == CUSTOMER["email"]


def test_deadline_extends_by_at_most_two_further_months_when_extended_with_a_reason(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    req = create_request(client, tenant)
    url = f"/v1/gdpr/requests/{req['id']}/extend"
    first = client.post(url, json={"months": 1, "reason": "many systems"}, headers=tenant.headers)
    assert first.status_code == 200, first.json
    second = client.post(url, json={"months": 1, "reason": "archive"}, headers=tenant.headers)
    assert second.json["extension_months"] == 2
    assert second.json["extension_reason"] == "many systems\narchive"
    berlin = ZoneInfo("Europe/Berlin")
    received = datetime.fromisoformat(req["received_at"]).astimezone(berlin).date()
    due = datetime.fromisoformat(second.json["due_at"]).astimezone(berlin)
    assert (due.year * 12 + due.month) - (received.year * 12 + received.month) in (3, 4)
    too_long = client.post(url, json={"months": 1, "reason": "more"}, headers=tenant.headers)
    assert too_long.status_code == 422
    assert too_long.json["code"] == "gdpr_extension_too_long"
    beyond = client.post(url, json={"months": 3, "reason": "x" * 5}, headers=tenant.headers)
    assert beyond.status_code == 422
    unchanged = client.get(f"/v1/gdpr/requests/{req['id']}", headers=tenant.headers).json
    assert unchanged["due_at"] == second.json["due_at"]
    assert unchanged["extension_months"] == 2


def test_extension_is_refused_when_asked_after_the_first_month(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    received = utcnow() - timedelta(days=40)
    req = create_request(client, tenant, received_at=received.isoformat())
    resp = client.post(
        f"/v1/gdpr/requests/{req['id']}/extend",
        json={"months": 1, "reason": "too late"},
        headers=tenant.headers,
    )
    assert resp.status_code == 409
    assert resp.json["code"] == "gdpr_extension_too_late"
    assert (
        client.get(f"/v1/gdpr/requests/{req['id']}", headers=tenant.headers).json["due_at"]
        == req["due_at"]
    )


def test_rejected_request_accepts_nothing_more_when_rejected_with_a_reason(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    req = create_request(client, tenant)
    rejected = client.post(
        f"/v1/gdpr/requests/{req['id']}/reject",
        json={"reason": "identity could not be verified"},
        headers=tenant.headers,
    ).json
    assert rejected["state"] == "rejected"
    assert rejected["rejection_reason"] == "identity could not be verified"
    for action, body in [("fulfil", {}), ("reject", {"reason": "again"})]:
        resp = client.post(
            f"/v1/gdpr/requests/{req['id']}/{action}", json=body, headers=tenant.headers
        )
        assert resp.status_code == 409, action


def test_overdue_list_shows_open_requests_past_their_deadline_when_filtered(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    late = create_request(client, tenant, received_at=(utcnow() - timedelta(days=45)).isoformat())
    create_request(client, tenant)  # fresh
    done = create_request(client, tenant, received_at=(utcnow() - timedelta(days=45)).isoformat())
    client.post(f"/v1/gdpr/requests/{done['id']}/reject", json={"reason": "excessive"},
                headers=tenant.headers)  # fmt: skip
    listing = client.get("/v1/gdpr/requests?overdue=true", headers=tenant.headers).json
    assert [r["id"] for r in listing["data"]] == [late["id"]]
    everything = client.get("/v1/gdpr/requests", headers=tenant.headers).json
    assert len(everything["data"]) == 3


def test_due_soon_and_overdue_are_announced_once_when_deadlines_approach(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    endpoint = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["gdpr.*"]},
        headers=tenant.headers,
    )
    assert endpoint.status_code == 201, endpoint.json
    soon = create_request(client, tenant, received_at=(utcnow() - timedelta(days=26)).isoformat())
    late = create_request(client, tenant, received_at=(utcnow() - timedelta(days=40)).isoformat())
    with app.app_context():
        assert deadlines_for_tenant(db.engine, tenant.tenant_id, now=utcnow()) == {
            "due_soon": 1,
            "overdue": 1,
        }
        assert deadlines_for_tenant(db.engine, tenant.tenant_id, now=utcnow()) == {
            "due_soon": 0,
            "overdue": 0,
        }
    events = _events(client, tenant)
    due_soon = [e for e in events if e["type"] == "gdpr.request.due_soon"]
    overdue = [e for e in events if e["type"] == "gdpr.request.overdue"]
    assert [e["data"]["object"]["id"] for e in due_soon] == [soon["id"]]
    assert [e["data"]["object"]["id"] for e in overdue] == [late["id"]]
    deliveries = client.get(
        f"/v1/webhook_endpoints/{endpoint.json['id']}/deliveries?limit=100", headers=tenant.headers
    ).json["data"]
    assert len(deliveries) >= 4  # two created, due soon, overdue


def test_notify_command_reports_counts_when_run(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    create_request(client, tenant, received_at=(utcnow() - timedelta(days=27)).isoformat())
    result = app.test_cli_runner().invoke(args=["gdpr", "notify-deadlines"])
    assert result.exit_code == 0, result.output
    assert '"due_soon": 1' in result.output


def test_audit_entry_holds_an_hmac_and_never_the_address_when_a_request_is_made(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    req = create_request(client, tenant)
    with owner_engine.connect() as conn:
        rows = conn.execute(sa.select(AuditEntry.__table__)).mappings().all()
    assert [r["action"] for r in rows] == ["gdpr.request.created"]
    key = derive_hmac_key("test-secret-key-not-for-production")
    assert rows[0]["subject_hmac"] == subject_hmac(key, CUSTOMER["email"])
    assert rows[0]["subject_id"] == req["customer_id"]
    assert CUSTOMER["email"] not in str(dict(rows[0]))
    listing = client.get(
        f"/v1/gdpr/audit_entries?subject_id={req['customer_id']}", headers=tenant.headers
    ).json
    assert [e["action"] for e in listing["data"]] == ["gdpr.request.created"]


def test_gdpr_endpoints_need_the_gdpr_scope_when_key_is_limited(
    client: FlaskClient, make_tenant: Any
) -> None:
    limited = make_tenant("Knapp GmbH", scopes=["customers:write"])
    customer_id = new_customer(client, limited)
    resp = client.post(
        "/v1/gdpr/requests",
        json={"customer_id": customer_id, "kind": "access"},
        headers=limited.headers,
    )
    assert resp.status_code == 403
    assert resp.json["code"] == "insufficient_scope"
    assert client.get("/v1/gdpr/requests", headers=limited.headers).status_code == 403


def test_retention_settings_refuse_periods_below_the_statute_when_changed(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    defaults = client.get("/v1/gdpr/settings", headers=tenant.headers).json
    assert defaults["retention_years"] == {"invoice": 8, "credit_note": 8, "oss_record": 10}
    short = client.patch(
        "/v1/gdpr/settings", json={"retention_years": {"invoice": 7}}, headers=tenant.headers
    )
    assert short.status_code == 422
    assert short.json["code"] == "gdpr_retention_too_short"
    longer = client.patch(
        "/v1/gdpr/settings",
        json={"retention_years": {"invoice": 10}, "export_ttl_hours": 48},
        headers=tenant.headers,
    )
    assert longer.status_code == 200, longer.json
    assert longer.json["retention_years"]["invoice"] == 10
    assert longer.json["export_ttl_hours"] == 48
