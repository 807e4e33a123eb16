"""Webhook endpoints (create, update, rotate) and delivery (dispatch, claim, send, record).

Delivery runs in three short transactions per batch so that no database transaction stays
open across an HTTP call: (1) claim due deliveries with a lease (`next_attempt_at` moved
LEASE ahead, `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent workers never send the
same delivery twice at once); (2) send, outside any transaction; (3) record the attempt and
the outcome. A worker killed between (1) and (3) leaves the lease to expire, after which the
delivery is sent again: at-least-once, which is why `webhook-id` stays the same on retries.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.events import services as events
from saas.events.models import Event
from saas.events.services import request_dispatch
from saas.kernel.errors import NotFoundError, ValidationFailedError
from saas.kernel.ids import new_id
from saas.kernel.secretbox import SecretBox
from saas.tenants.models import TenantNotification
from saas.webhooks import schedule, signing
from saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

LEASE = timedelta(minutes=5)
ROTATION_OVERLAP = timedelta(hours=24)
BATCH = 100
TIMEOUT = (5, 10)  # connect, read seconds


def _check_events(patterns: list[str]) -> list[str]:
    known = events.EVENT_TYPES  # read at call time: packages register types at import
    families = {t.split(".", 1)[0] for t in known}
    bad = [
        p
        for p in patterns
        if p != "*" and p not in known and not (p.endswith(".*") and p[:-2] in families)
    ]
    if bad or not patterns:
        raise ValidationFailedError(
            "unknown event types",
            errors={"enabled_events": [f"unknown: {', '.join(bad) or '(none given)'}"]},
        )
    return sorted(set(patterns))


def _check_url(url: str, *, allow_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValidationFailedError("invalid URL", errors={"url": ["an absolute https URL"]})
    if parts.scheme == "http" and not allow_http:
        raise ValidationFailedError(
            "live endpoints need https", errors={"url": ["live-mode endpoints must use https"]}
        )
    return url


def subscribes(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, p) for p in endpoint.enabled_events)


def get_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalars(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    ).first()
    if endpoint is None:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}", code="webhook_endpoint_not_found")
    return endpoint


def create_endpoint(
    session: Session,
    box: SecretBox,
    *,
    url: str,
    enabled_events: list[str],
    livemode: bool,
    now: datetime,
    description: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        url=_check_url(url, allow_http=not livemode),
        enabled_events=_check_events(enabled_events),
        description=description,
        status="enabled",
        secret_encrypted=box.encrypt(secret),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def update_endpoint(
    session: Session, endpoint_id: str, data: dict[str, Any], *, now: datetime
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id)
    if "url" in data:
        endpoint.url = _check_url(data["url"], allow_http=not endpoint.livemode)
    if "enabled_events" in data:
        endpoint.enabled_events = _check_events(data["enabled_events"])
    if "description" in data:
        endpoint.description = data["description"]
    if "status" in data:
        endpoint.status = data["status"]
        if data["status"] == "enabled":
            endpoint.disabled_reason = None
            endpoint.failing_since = None
    endpoint.updated_at = now
    session.flush()
    return endpoint


def rotate_secret(
    session: Session, box: SecretBox, endpoint_id: str, *, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one still signs (second signature) for ROTATION_OVERLAP."""
    endpoint = get_endpoint(session, endpoint_id)
    secret = signing.new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_encrypted = box.encrypt(secret)
    endpoint.updated_at = now
    session.flush()
    return endpoint, secret


def dispatch_events(session: Session, *, now: datetime) -> int:
    """Fan committed, undispatched events out to the endpoints that subscribe to them.

    Events are dispatched within moments of their commit, so a new endpoint sees what happens
    from then on. (Event times are not compared with the endpoint's: on a test clock they are
    simulated times.)
    """
    events = session.scalars(
        sa.select(Event).where(Event.dispatched_at.is_(None)).order_by(Event.id).limit(1000)
    ).all()
    if not events:
        return 0
    endpoints = session.scalars(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.status == "enabled")
    ).all()
    created = 0
    for event in events:
        for endpoint in endpoints:
            if endpoint.livemode == event.livemode and subscribes(endpoint, event.type):
                session.add(
                    WebhookDelivery(
                        id=new_id("wdl"),
                        event_id=event.id,
                        endpoint_id=endpoint.id,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                created += 1
        event.dispatched_at = now
    session.flush()
    return created


@dataclass(frozen=True)
class Outbound:
    delivery_id: str
    url: str
    body: bytes
    headers: dict[str, str]


def claim_due(session: Session, box: SecretBox, *, now: datetime) -> list[Outbound]:
    stmt = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    deliveries = session.scalars(stmt).all()
    outbound = []
    for delivery in deliveries:
        delivery.next_attempt_at = now + LEASE
        event = session.get(Event, (delivery.tenant_id, delivery.event_id))
        endpoint = session.get(WebhookEndpoint, (delivery.tenant_id, delivery.endpoint_id))
        # foreign keys with cascades keep deliveries, events and endpoints together
        assert event is not None
        assert endpoint is not None
        if endpoint.status != "enabled":
            delivery.status = "canceled"
            continue
        body = json.dumps(
            {
                "id": event.id,
                "type": event.type,
                "timestamp": event.created_at.isoformat(),
                "livemode": event.livemode,
                "data": event.data,
            },
            separators=(",", ":"),
        ).encode()
        secrets_ = [box.decrypt(endpoint.secret_encrypted)]
        if (
            endpoint.previous_secret_encrypted
            and endpoint.previous_secret_expires_at
            and endpoint.previous_secret_expires_at > now
        ):
            secrets_.append(box.decrypt(endpoint.previous_secret_encrypted))
        outbound.append(
            Outbound(
                delivery.id,
                endpoint.url,
                body,
                signing.headers(secrets_, event.id, int(now.timestamp()), body),
            )
        )
    session.flush()
    return outbound


@dataclass(frozen=True)
class Result:
    status: int | None
    body: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Sender = Callable[[Outbound], Result]


def http_send(out: Outbound) -> Result:
    started = time.perf_counter()
    try:
        resp = requests.post(
            out.url, data=out.body, headers=out.headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        ms = int((time.perf_counter() - started) * 1000)
        return Result(None, None, f"{type(exc).__name__}: {exc}"[:500], ms)
    ms = int((time.perf_counter() - started) * 1000)
    return Result(resp.status_code, resp.text[:2000], None, ms)


def record_result(session: Session, delivery_id: str, result: Result, *, now: datetime) -> str:
    """Record one attempt; returns the delivery's status after it (for the worker's metrics)."""
    delivery = session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    ).one()
    endpoint = session.get(WebhookEndpoint, (delivery.tenant_id, delivery.endpoint_id))
    assert endpoint is not None
    session.add(
        WebhookAttempt(
            id=new_id("wat"),
            delivery_id=delivery.id,
            attempted_at=now,
            response_status=result.status,
            response_body=result.body,
            error=result.error,
            duration_ms=result.duration_ms,
        )
    )
    first_attempt_at = now
    if delivery.attempts:
        first = session.scalar(
            sa.select(sa.func.min(WebhookAttempt.attempted_at)).where(
                WebhookAttempt.delivery_id == delivery.id
            )
        )
        first_attempt_at = first or now
    delivery.attempts += 1
    delivery.last_attempt_at = now
    if result.ok:
        delivery.status = "succeeded"
        delivery.next_attempt_at = None
        endpoint.failing_since = None
    else:
        retry_at = schedule.next_attempt(delivery.attempts, first_attempt_at, now)
        delivery.status = "pending" if retry_at else "failed"
        delivery.next_attempt_at = retry_at
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        elif (
            now - endpoint.failing_since >= schedule.DISABLE_AFTER and endpoint.status == "enabled"
        ):
            _disable(session, endpoint, now)
    session.flush()
    return delivery.status


def _disable(session: Session, endpoint: WebhookEndpoint, now: datetime) -> None:
    endpoint.status = "disabled"
    endpoint.disabled_reason = "failing_for_days"
    endpoint.updated_at = now
    session.add(
        TenantNotification(
            id=new_id("ntf"),
            kind="webhook_endpoint.disabled",
            message=(
                f"Webhook endpoint {endpoint.url} was disabled after failing since "
                f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC without a single success. "
                "Fix the receiver, then enable the endpoint again."
            ),
            subject_id=endpoint.id,
            created_at=now,
        )
    )


def redeliver(session: Session, delivery_id: str, *, now: datetime) -> WebhookDelivery:
    delivery = session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    ).first()
    if delivery is None:
        raise NotFoundError(f"no webhook delivery {delivery_id}", code="webhook_delivery_not_found")
    delivery.status = "pending"
    delivery.next_attempt_at = now
    session.flush()
    request_dispatch(session, delivery.tenant_id)
    return delivery
