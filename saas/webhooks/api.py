from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, request
from flask.views import MethodView

from saas.auth.middleware import current_principal, requires
from saas.events.models import Event
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.kernel.errors import NotFoundError
from saas.kernel.pagination import ListArgs, list_envelope, paginate
from saas.kernel.secretbox import SecretBox
from saas.webhooks import services
from saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from saas.webhooks.schemas import (
    DeliveryListSchema,
    DeliverySchema,
    EndpointCreateSchema,
    EndpointListSchema,
    EndpointSchema,
    EndpointUpdateSchema,
    EndpointWithSecretSchema,
    EventListSchema,
    EventSchema,
)

blp = Blueprint("webhooks", __name__, url_prefix="/v1", description="Webhooks and events")


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookEndpoint:
    # a transient attribute for this one response; the secret is never stored in plaintext
    endpoint.secret = secret  # type: ignore[attr-defined]
    return endpoint


def _box() -> SecretBox:
    settings = current_app.config["ABOWERK_SETTINGS"]
    return SecretBox(settings.secret_key, settings.previous_secret_keys)


@blp.route("/webhook_endpoints")
class EndpointCollection(MethodView):
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, EndpointListSchema)
    @blp.problems(401, 403, 422, 429)
    @requires("webhooks", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List webhook endpoints."""
        rows, more = paginate(
            session(),
            sa.select(WebhookEndpoint),
            WebhookEndpoint.id,
            limit=args["limit"],
            starting_after=args["starting_after"],
        )
        return list_envelope(request.path, rows, more)

    @blp.arguments(EndpointCreateSchema)
    @blp.response(201, EndpointWithSecretSchema)
    @blp.problems(400, 401, 403, 409, 413, 422, 429)
    @requires("webhooks", "write")
    def post(self, data: dict[str, Any]) -> WebhookEndpoint:
        """Create an endpoint; the signing secret is in this response only."""
        endpoint, secret = services.create_endpoint(
            session(),
            _box(),
            url=data["url"],
            enabled_events=data["enabled_events"],
            description=data["description"],
            livemode=current_principal().livemode,
            now=utcnow(),
        )
        return _with_secret(endpoint, secret)


@blp.route("/webhook_endpoints/<endpoint_id>")
class EndpointItem(MethodView):
    @blp.response(200, EndpointSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("webhooks", "read")
    def get(self, endpoint_id: str) -> WebhookEndpoint:
        """Get an endpoint."""
        return services.get_endpoint(session(), endpoint_id)

    @blp.arguments(EndpointUpdateSchema)
    @blp.response(200, EndpointSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("webhooks", "write")
    def patch(self, data: dict[str, Any], endpoint_id: str) -> WebhookEndpoint:
        """Change URL, events or description; enable or disable."""
        return services.update_endpoint(session(), endpoint_id, data, now=utcnow())


class _Empty(ma.Schema):
    pass


@blp.route("/webhook_endpoints/<endpoint_id>/rotate_secret", methods=["POST"])
@blp.arguments(_Empty)
@blp.response(200, EndpointWithSecretSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("webhooks", "write")
def rotate_secret(_data: dict[str, Any], endpoint_id: str) -> WebhookEndpoint:
    """New signing secret; deliveries carry the old secret's signature too for 24 hours."""
    endpoint, secret = services.rotate_secret(session(), _box(), endpoint_id, now=utcnow())
    return _with_secret(endpoint, secret)


@blp.route("/webhook_endpoints/<endpoint_id>/deliveries", methods=["GET"])
@blp.arguments(ListArgs, location="query")
@blp.response(200, DeliveryListSchema)
@blp.problems(401, 403, 404, 422, 429)
@requires("webhooks", "read")
def list_deliveries(args: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    """Deliveries of one endpoint, newest first (the delivery log)."""
    services.get_endpoint(session(), endpoint_id)
    rows, more = paginate(
        session(),
        sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id),
        WebhookDelivery.id,
        limit=args["limit"],
        starting_after=args["starting_after"],
    )
    return list_envelope(request.path, rows, more)


def _delivery_out(delivery: WebhookDelivery) -> WebhookDelivery:
    attempts = (
        session()
        .scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.attempted_at)
        )
        .all()
    )
    delivery.attempt_log = attempts  # type: ignore[attr-defined]  # transient, for the response
    return delivery


@blp.route("/webhook_deliveries/<delivery_id>", methods=["GET"])
@blp.response(200, DeliverySchema)
@blp.problems(401, 403, 404, 429)
@requires("webhooks", "read")
def get_delivery(delivery_id: str) -> WebhookDelivery:
    """A delivery with every attempt."""
    delivery = (
        session()
        .scalars(sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))
        .first()
    )
    if delivery is None:
        raise NotFoundError(f"no webhook delivery {delivery_id}", code="webhook_delivery_not_found")
    return _delivery_out(delivery)


@blp.route("/webhook_deliveries/<delivery_id>/redeliver", methods=["POST"])
@blp.arguments(_Empty)
@blp.response(202, DeliverySchema)
@blp.problems(400, 401, 403, 404, 422, 429)
@requires("webhooks", "write")
def redeliver(_data: dict[str, Any], delivery_id: str) -> WebhookDelivery:
    """Send a delivery again now (also after it was given up)."""
    delivery = services.redeliver(session(), delivery_id, now=utcnow())
    return _delivery_out(delivery)


@blp.route("/events", methods=["GET"])
@blp.arguments(ListArgs, location="query")
@blp.response(200, EventListSchema)
@blp.problems(401, 403, 422, 429)
@requires("events", "read")
def list_events(args: dict[str, Any]) -> dict[str, Any]:
    """Events, newest first."""
    rows, more = paginate(
        session(),
        sa.select(Event),
        Event.id,
        limit=args["limit"],
        starting_after=args["starting_after"],
    )
    return list_envelope(request.path, rows, more)


@blp.route("/events/<event_id>", methods=["GET"])
@blp.response(200, EventSchema)
@blp.problems(401, 403, 404, 429)
@requires("events", "read")
def get_event(event_id: str) -> Event:
    """An event."""
    event = session().scalars(sa.select(Event).where(Event.id == event_id)).first()
    if event is None:
        raise NotFoundError(f"no event {event_id}", code="event_not_found")
    return event
