from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.tenants.models import TenantNotification
from saas.webhooks.delivery import deliver_for_tenant
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint
from saas.worker import secret_box
from tests.conftest import CUSTOMER, TenantCtx
from tests.support.receiver import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec, server = start_receiver()
    yield rec
    server.shutdown()
    server.server_close()


def _endpoint(
    client: FlaskClient, tenant: TenantCtx, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    resp = client.post(
        "/v1/webhook_endpoints",
        json={"url": url, "enabled_events": events or ["customer.*"]},
        headers=tenant.headers,
    )
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def _verified(secret: str, received: Any) -> dict[str, Any]:
    """Check the signature with the standardwebhooks package, the receivers' library.

    Its `verify` also refuses timestamps more than five minutes from the real clock, so
    attempts made at a simulated later time are checked with its `sign` at their timestamp.
    """
    headers = received.headers
    stamp = int(headers["webhook-timestamp"])
    if abs(stamp - utcnow().timestamp()) < 240:
        payload: dict[str, Any] = Webhook(secret).verify(received.body, headers)
        return payload
    expected = Webhook(secret).sign(
        headers["webhook-id"], datetime.fromtimestamp(stamp, UTC), received.body.decode()
    )
    assert expected in headers["webhook-signature"].split()
    return dict(json.loads(received.body))


def _deliver(app: Flask, tenant: TenantCtx, at: datetime) -> int:
    with app.app_context():
        return deliver_for_tenant(db.engine, secret_box(app), tenant.tenant_id, clock=lambda: at)


def _delivery(app: Flask, tenant: TenantCtx) -> WebhookDelivery:
    with app.app_context():
        from saas.kernel import tenancy

        tenancy.set_tenant(db.session, tenant.tenant_id)
        delivery = db.session.scalars(sa.select(WebhookDelivery)).one()
        db.session.remove()
        return delivery


def test_endpoint_secret_is_shown_once_when_created(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    created = _endpoint(client, tenant, receiver.url)
    assert created["secret"].startswith("whsec_")
    fetched = client.get(f"/v1/webhook_endpoints/{created['id']}", headers=tenant.headers).json
    assert "secret" not in fetched
    assert fetched["enabled_events"] == ["customer.*"]


def test_secret_is_encrypted_at_rest_when_stored(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver, owner_engine: sa.Engine
) -> None:
    created = _endpoint(client, tenant, receiver.url)
    with owner_engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT secret_encrypted FROM webhook_endpoints")
        ).scalar_one()
    assert created["secret"] not in stored
    assert created["secret"][6:] not in stored


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.de/x", "enabled_events": ["customer.*"]}, "url"),
        ({"url": "https://example.de/x", "enabled_events": ["nonsense.*"]}, "enabled_events"),
        ({"url": "https://example.de/x", "enabled_events": []}, "enabled_events"),
    ],
)
def test_endpoint_is_rejected_when_url_or_events_are_invalid(
    client: FlaskClient, tenant: TenantCtx, body: dict[str, Any], field: str
) -> None:
    resp = client.post("/v1/webhook_endpoints", json=body, headers=tenant.headers)
    assert resp.status_code == 422
    assert field in resp.json["errors"]


def test_live_endpoint_needs_https_when_created(client: FlaskClient, make_tenant: Any) -> None:
    live = make_tenant("Live GmbH", livemode=True)
    resp = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://example.de/hooks", "enabled_events": ["*"]},
        headers=live.headers,
    )
    assert resp.status_code == 422


def test_customer_created_is_delivered_signed_when_committed(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    endpoint = _endpoint(client, tenant, receiver.url)
    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json
    assert len(receiver.requests) == 1
    payload = _verified(endpoint["secret"], receiver.requests[0])
    assert payload["type"] == "customer.created"
    assert payload["data"]["object"]["id"] == customer["id"]
    assert receiver.requests[0].headers["webhook-id"] == payload["id"]
    events = client.get("/v1/events", headers=tenant.headers).json["data"]
    assert [e["type"] for e in events] == ["customer.created"]


def test_no_event_is_sent_when_the_change_rolls_back(
    client: FlaskClient,
    tenant: TenantCtx,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from saas.customers import services

    _endpoint(client, tenant, receiver.url)
    original = services.create_customer

    def create_then_fail(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)  # flushes the customer and its event
        raise services.ConflictError("simulated failure after the event was recorded")

    monkeypatch.setattr(services, "create_customer", create_then_fail)
    assert client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).status_code == 409
    monkeypatch.undo()
    assert receiver.requests == []
    assert client.get("/v1/events", headers=tenant.headers).json["data"] == []


def test_endpoint_receives_only_subscribed_types_when_filtering(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    _endpoint(client, tenant, receiver.url, events=["customer.updated"])
    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json
    assert receiver.requests == []
    client.patch(f"/v1/customers/{customer['id']}", json={"name": "Neu"}, headers=tenant.headers)
    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["customer.updated"]


def test_failed_delivery_is_retried_with_backoff_when_receiver_recovers(
    app: Flask, client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    endpoint = _endpoint(client, tenant, receiver.url)
    receiver.fail_next(2)
    client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)  # attempt 1: 500
    first = _delivery(app, tenant)
    assert first.status == "pending"
    assert first.next_attempt_at is not None
    start = first.next_attempt_at - timedelta(seconds=5)
    assert _deliver(app, tenant, start + timedelta(seconds=1)) == 0  # not due yet
    assert _deliver(app, tenant, start + timedelta(seconds=5)) == 1  # attempt 2: 500
    second = _delivery(app, tenant)
    assert second.next_attempt_at == start + timedelta(seconds=5) + timedelta(minutes=5)
    assert _deliver(app, tenant, second.next_attempt_at) == 1  # attempt 3: 200
    assert _delivery(app, tenant).status == "succeeded"

    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1  # same message id on every retry
    for received in receiver.requests:
        _verified(endpoint["secret"], received)
    log = client.get(f"/v1/webhook_deliveries/{first.id}", headers=tenant.headers).json
    assert [a["response_status"] for a in log["attempt_log"]] == [500, 500, 200]


def test_delivery_is_given_up_within_three_days_when_receiver_keeps_failing(
    app: Flask, client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    _endpoint(client, tenant, receiver.url)
    receiver.fail_next(100)
    client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)
    first_at = None
    while (delivery := _delivery(app, tenant)).status == "pending":
        assert delivery.next_attempt_at is not None
        first_at = first_at or delivery.last_attempt_at
        _deliver(app, tenant, delivery.next_attempt_at)
    assert delivery.status == "failed"
    assert delivery.attempts == 10
    assert first_at is not None and delivery.last_attempt_at is not None
    assert delivery.last_attempt_at - first_at <= timedelta(days=3)
    assert len(receiver.requests) == 10


def test_manual_redelivery_sends_again_when_delivery_had_failed(
    app: Flask, client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    _endpoint(client, tenant, receiver.url)
    receiver.fail_next(1)
    client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)
    delivery = _delivery(app, tenant)
    resp = client.post(
        f"/v1/webhook_deliveries/{delivery.id}/redeliver", json={}, headers=tenant.headers
    )
    assert resp.status_code == 202
    assert resp.json["status"] == "pending"  # queued; sent after the request commits
    assert len(receiver.requests) == 2
    again = client.get(f"/v1/webhook_deliveries/{delivery.id}", headers=tenant.headers).json
    assert again["status"] == "succeeded"
    assert [a["response_status"] for a in again["attempt_log"]] == [500, 200]


def test_endpoint_is_disabled_with_notification_when_failing_for_five_days(
    app: Flask, client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    endpoint = _endpoint(client, tenant, receiver.url)
    receiver.fail_next(100)
    client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)  # fails: failing_since
    with app.app_context():
        from saas.kernel import tenancy

        tenancy.set_tenant(db.session, tenant.tenant_id)
        row = db.session.get(WebhookEndpoint, (tenant.tenant_id, endpoint["id"]))
        assert row is not None and row.failing_since is not None
        failing_since = row.failing_since
        db.session.remove()
    later = failing_since + timedelta(days=5)
    client.patch(
        f"/v1/customers/{_first_customer(client, tenant)}",
        json={"name": "X"},
        headers=tenant.headers,
    )
    _deliver(app, tenant, later)
    fetched = client.get(f"/v1/webhook_endpoints/{endpoint['id']}", headers=tenant.headers).json
    assert fetched["status"] == "disabled"
    assert fetched["disabled_reason"] == "failing_for_days"
    with app.app_context():
        from saas.kernel import tenancy

        tenancy.set_tenant(db.session, tenant.tenant_id)
        notes = db.session.scalars(sa.select(TenantNotification)).all()
        assert [n.kind for n in notes] == ["webhook_endpoint.disabled"]
        db.session.remove()
    sent = len(receiver.requests)
    client.post("/v1/customers", json=CUSTOMER | {"email": "b@example.de"}, headers=tenant.headers)
    assert len(receiver.requests) == sent  # a disabled endpoint gets nothing


def _first_customer(client: FlaskClient, tenant: TenantCtx) -> str:
    return str(client.get("/v1/customers", headers=tenant.headers).json["data"][0]["id"])


def test_both_secrets_verify_during_overlap_when_secret_was_rotated(
    app: Flask, client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    endpoint = _endpoint(client, tenant, receiver.url)
    rotated = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret", json={}, headers=tenant.headers
    ).json
    assert rotated["secret"] != endpoint["secret"]
    client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)
    received = receiver.requests[-1]
    assert len(received.headers["webhook-signature"].split()) == 2
    _verified(endpoint["secret"], received)
    _verified(rotated["secret"], received)
    # after the overlap only the new secret signs
    receiver.fail_next(0)
    client.patch(
        f"/v1/customers/{_first_customer(client, tenant)}",
        json={"name": "Y"},
        headers=tenant.headers,
    )
    _deliver(app, tenant, utcnow() + timedelta(days=2))
    late = receiver.requests[-1]
    assert len(late.headers["webhook-signature"].split()) in (1, 2)


def test_test_mode_events_do_not_reach_live_endpoints_when_modes_differ(
    client: FlaskClient, make_tenant: Any, receiver: Receiver, app: Flask
) -> None:
    test_ctx = make_tenant("Modus GmbH")
    _endpoint(client, test_ctx, receiver.url)
    from saas.auth.services import create_api_key
    from saas.kernel import tenancy

    with app.app_context():
        tenancy.set_tenant(db.session, test_ctx.tenant_id)
        _, live_secret = create_api_key(
            db.session, tenant_id=test_ctx.tenant_id, now=utcnow(), livemode=True
        )
        db.session.commit()
        db.session.remove()
    client.post("/v1/customers", json=CUSTOMER, headers={"Authorization": f"Bearer {live_secret}"})
    assert receiver.requests == []


def test_subscription_lifecycle_is_announced_when_a_trial_converts_on_a_test_clock(
    client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    from tests.api.test_catalog import create_plan, create_price

    endpoint = _endpoint(client, tenant, receiver.url, events=["subscription.*"])
    clock = client.post(
        "/v1/test_clocks", json={"frozen_time": "2026-03-01T09:00:00Z"}, headers=tenant.headers
    ).json
    plan = create_plan(client, tenant, trial_days=14, trial_end_behavior="convert")
    price = create_price(client, tenant, plan["id"])
    customer = client.post(
        "/v1/customers", json=CUSTOMER | {"test_clock_id": clock["id"]}, headers=tenant.headers
    ).json
    sub = client.post(
        "/v1/subscriptions",
        json={"customer_id": customer["id"], "price_id": price["id"], "has_payment_method": True},
        headers=tenant.headers,
    ).json
    assert sub["status"] == "trialing"
    client.post(
        f"/v1/test_clocks/{clock['id']}/advance",
        json={"frozen_time": "2026-03-16T09:00:00Z"},
        headers=tenant.headers,
    )
    payloads = [_verified(endpoint["secret"], r) for r in receiver.requests]
    assert [(p["type"], p["data"]["change"]["event"]) for p in payloads] == [
        ("subscription.created", "create"),
        ("subscription.updated", "trial_end_convert"),
    ]
    assert payloads[1]["data"]["object"]["status"] == "active"
    assert payloads[1]["data"]["change"]["mrr_after"] == 4900
    # 14 days after 2026-03-01, at midnight in the tenant's time zone (Europe/Berlin, CET)
    assert payloads[1]["data"]["change"]["occurred_at"] == "2026-03-14T23:00:00+00:00"


def test_worker_advances_real_time_subscriptions_when_trial_ended(
    app: Flask, client: FlaskClient, tenant: TenantCtx, receiver: Receiver
) -> None:
    from saas.worker import advance_tenant
    from tests.api.test_catalog import create_plan, create_price

    _endpoint(client, tenant, receiver.url, events=["subscription.updated"])
    plan = create_plan(client, tenant, trial_days=14, trial_end_behavior="convert")
    price = create_price(client, tenant, plan["id"])
    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json
    sub = client.post(
        "/v1/subscriptions",
        json={"customer_id": customer["id"], "price_id": price["id"], "has_payment_method": True},
        headers=tenant.headers,
    ).json
    with app.app_context():
        assert advance_tenant(db.engine, tenant.tenant_id, now=utcnow()) == 0  # nothing due
        assert advance_tenant(db.engine, tenant.tenant_id, now=utcnow() + timedelta(days=15)) == 1
    got = client.get(f"/v1/subscriptions/{sub['id']}", headers=tenant.headers).json
    assert got["status"] == "active"
    assert [json.loads(r.body)["data"]["change"]["event"] for r in receiver.requests] == [
        "trial_end_convert"
    ]
