"""Events (the outbox) and webhook deliveries: payloads may carry the customer's data.

Which events concern a customer: those whose payload names the customer's id anywhere
(`customer.*` events as the object, `subscription.*` as its `customer_id`). On erasure their
payloads are redacted in place: the customer object's personal fields (and subscription
metadata) are emptied and any of the person's identifiers left in a string is replaced by
`[redacted]`; the tenant's receivers' responses to those deliveries (which often echo the
payload) are dropped, as is any other response that quotes one of the identifiers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    Provider,
    Registry,
    Subject,
    columns,
)
from compliance.tokens import REDACTED, scrub, scrub_json
from saas.events.models import Event
from saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

NAME = "events_and_webhooks"
CUSTOMER_PERSONAL_KEYS = ("email", "name", "address", "vat_id", "external_ref", "metadata")


def _mentions(node: Any, value: str) -> bool:
    if isinstance(node, dict):
        return any(_mentions(v, value) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, value) for v in node)
    return bool(node == value)


def events_about(session: Session, customer_id: str) -> list[Event]:
    # a text search narrows the rows down in the database; the exact check is in Python
    candidates = session.scalars(
        sa.select(Event)
        .where(sa.cast(Event.data, sa.Text).contains(customer_id, autoescape=True))
        .order_by(Event.id)
    ).all()
    return [event for event in candidates if _mentions(event.data, customer_id)]


def _redact_objects(node: Any, customer_id: str) -> Any:
    if isinstance(node, list):
        return [_redact_objects(item, customer_id) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _redact_objects(item, customer_id) for key, item in node.items()}
    if out.get("object") == "customer" and out.get("id") == customer_id:
        for key in CUSTOMER_PERSONAL_KEYS:
            if key in out:
                out[key] = {} if key in ("address", "metadata") else REDACTED
    subscription = out.get("object") == "subscription" and out.get("customer_id") == customer_id
    if subscription and "metadata" in out:
        out["metadata"] = {}
    return out


def redact_payload(data: dict[str, Any], subject: Subject) -> dict[str, Any]:
    redacted = _redact_objects(data, subject.customer_id)
    result: dict[str, Any] = scrub_json(redacted, subject.identifiers)
    return result


def export(ctx: ExportContext) -> ExportPart:
    session = ctx.session
    events = {e.id: e for e in events_about(session, ctx.subject.customer_id)}
    if not events:
        return ExportPart(records={"webhook_deliveries": []})
    rows = session.execute(
        sa.select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.event_id.in_(list(events)))
        .order_by(WebhookDelivery.id)
    ).all()
    records = []
    for delivery, endpoint in rows:
        event = events[delivery.event_id]
        records.append(
            {
                "event_id": event.id,
                "event_type": event.type,
                "event_created_at": event.created_at,
                "endpoint_host": urlsplit(endpoint.url).hostname or "",
                "status": delivery.status,
                "attempts": delivery.attempts,
                "last_attempt_at": delivery.last_attempt_at,
                "data": event.data,
            }
        )
    return ExportPart(records={"webhook_deliveries": records})


def erase(ctx: ErasureContext) -> ErasureReport:
    session, subject = ctx.session, ctx.subject
    report = ErasureReport()
    events = events_about(session, subject.customer_id)
    for event in events:
        redacted = redact_payload(event.data, subject)
        if redacted != event.data:
            event.data = redacted
            report.count("event_redacted")
    event_ids = [e.id for e in events]
    attempts: list[WebhookAttempt] = []
    if event_ids:
        attempts = list(
            session.scalars(
                sa.select(WebhookAttempt)
                .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                .where(WebhookDelivery.event_id.in_(event_ids))
            )
        )
    for identifier in subject.identifiers:
        attempts.extend(
            session.scalars(
                sa.select(WebhookAttempt).where(
                    WebhookAttempt.response_body.contains(identifier, autoescape=True)
                )
            )
        )
    for attempt in {a.id: a for a in attempts}.values():
        if attempt.response_body is not None:
            attempt.response_body = None
            report.count("webhook_response_dropped")
        if attempt.error:
            attempt.error = scrub(attempt.error, subject.identifiers)
    session.flush()
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("events", ["data"]) | columns("webhook_attempts", ["response_body"]),
    purpose="telling the tenant's own systems about changes (Art. 28 GDPR, on its behalf)",
    retention=(
        "events and delivery logs are kept for the tenant to inspect; the person's data in "
        "them is redacted on erasure"
    ),
    export=export,
    erase=erase,
    categories=("webhook_deliveries",),
    order=40,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
