from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.http.api import Blueprint, link
from saas.kernel.clock import utcnow
from saas.kernel.pagination import ListArgs, list_envelope
from saas.subscriptions import queries, services
from saas.subscriptions.models import STATUSES, Subscription
from saas.subscriptions.schemas import (
    ChangePreviewSchema,
    ChargeListSchema,
    EmptySchema,
    HistoryListSchema,
    PaymentMethodSchema,
    SubscriptionCancelSchema,
    SubscriptionChangeSchema,
    SubscriptionCreateSchema,
    SubscriptionListSchema,
    SubscriptionSchema,
)

blp = Blueprint(
    "subscriptions", __name__, url_prefix="/v1/subscriptions", description="Subscriptions"
)

_WRITE_PROBLEMS = (400, 401, 403, 404, 409, 413, 422, 429)

_BY_ID = {"subscription_id": "$response.body#/id"}
# what a subscription answer (created or changed) leads to
_SUBSCRIPTION_LINKS = {
    "GetSubscription": link(
        "get", "/v1/subscriptions/{subscription_id}", "The subscription.", parameters=_BY_ID
    ),
    "ChangeSubscription": link(
        "post",
        "/v1/subscriptions/{subscription_id}/change",
        "Change its price or quantity.",
        parameters=_BY_ID,
    ),
    "SetPaymentMethod": link(
        "post",
        "/v1/subscriptions/{subscription_id}/payment_method",
        "Record a payment method: an incomplete subscription becomes active.",
        parameters=_BY_ID,
    ),
    "ListCharges": link(
        "get",
        "/v1/subscriptions/{subscription_id}/charges",
        "What it owes or is owed: recurring charges and proration lines, to be invoiced.",
        parameters=_BY_ID,
    ),
    "ListInvoices": link(
        "get",
        "/v1/invoices",
        "The customer's invoices.",
        parameters={"customer_id": "$response.body#/customer_id"},
    ),
}


def _actor() -> str:
    return current_principal().credential_id


class SubscriptionListArgs(ListArgs):
    customer_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))


@blp.route("")
class SubscriptionCollection(MethodView):
    @blp.arguments(SubscriptionListArgs, location="query")
    @blp.response(200, SubscriptionListSchema)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("subscriptions", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List subscriptions, newest first."""
        rows, has_more = queries.list_subscriptions(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            customer_id=args["customer_id"],
            status=args["status"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(SubscriptionCreateSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.links(201, **_SUBSCRIPTION_LINKS)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, data: dict[str, Any]) -> Subscription:
        """Subscribe a customer to a price (trialing, active, or incomplete without a payment
        method). A customer whose earlier subscriptions are all canceled is a reactivation."""
        return services.create_subscription(session(), data, actor=_actor(), now=utcnow())


@blp.route("/<subscription_id>")
class SubscriptionItem(MethodView):
    @blp.response(200, SubscriptionSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("subscriptions", "read")
    def get(self, subscription_id: str) -> Subscription:
        """Get a subscription."""
        return services.get_subscription(session(), subscription_id)


@blp.route("/<subscription_id>/change")
class SubscriptionChange(MethodView):
    @blp.arguments(SubscriptionChangeSchema)
    @blp.response(200, SubscriptionSchema)
    @blp.links(200, **_SUBSCRIPTION_LINKS)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, data: dict[str, Any], subscription_id: str) -> Subscription:
        """Change price and/or quantity, now (prorated to the day) or at the period end."""
        return services.change_subscription(
            session(), subscription_id, data, actor=_actor(), now=utcnow()
        )


@blp.route("/<subscription_id>/change/preview")
class SubscriptionChangePreview(MethodView):
    @blp.arguments(SubscriptionChangeSchema)
    @blp.response(200, ChangePreviewSchema)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "read")
    def post(self, data: dict[str, Any], subscription_id: str) -> services.ChangePreview:
        """The proration lines a change would record, without changing anything."""
        return services.preview_change(session(), subscription_id, data, now=utcnow())


@blp.route("/<subscription_id>/cancel")
class SubscriptionCancel(MethodView):
    @blp.arguments(SubscriptionCancelSchema)
    @blp.response(200, SubscriptionSchema)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, data: dict[str, Any], subscription_id: str) -> Subscription:
        """Cancel now (optionally crediting unused days) or at the period end."""
        return services.cancel_subscription(
            session(), subscription_id, data, actor=_actor(), now=utcnow()
        )


@blp.route("/<subscription_id>/uncancel")
class SubscriptionUncancel(MethodView):
    @blp.arguments(EmptySchema)
    @blp.response(200, SubscriptionSchema)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, _data: dict[str, Any], subscription_id: str) -> Subscription:
        """Take back a cancellation scheduled for the period end."""
        return services.uncancel_subscription(
            session(), subscription_id, actor=_actor(), now=utcnow()
        )


@blp.route("/<subscription_id>/pause")
class SubscriptionPause(MethodView):
    @blp.arguments(EmptySchema)
    @blp.response(200, SubscriptionSchema)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, _data: dict[str, Any], subscription_id: str) -> Subscription:
        """Pause: service stops today, unused days are credited."""
        return services.pause_subscription(session(), subscription_id, actor=_actor(), now=utcnow())


@blp.route("/<subscription_id>/resume")
class SubscriptionResume(MethodView):
    @blp.arguments(EmptySchema)
    @blp.response(200, SubscriptionSchema)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, _data: dict[str, Any], subscription_id: str) -> Subscription:
        """Resume a paused subscription: service and charges start again today."""
        return services.resume_subscription(
            session(), subscription_id, actor=_actor(), now=utcnow()
        )


@blp.route("/<subscription_id>/payment_method")
class SubscriptionPaymentMethod(MethodView):
    @blp.arguments(PaymentMethodSchema)
    @blp.response(200, SubscriptionSchema)
    @blp.links(200, **_SUBSCRIPTION_LINKS)
    @blp.problems(*_WRITE_PROBLEMS)
    @requires("subscriptions", "write")
    def post(self, data: dict[str, Any], subscription_id: str) -> Subscription:
        """Record whether a payment method is on file; activates an incomplete subscription."""
        return services.set_payment_method(
            session(), subscription_id, data, actor=_actor(), now=utcnow()
        )


@blp.route("/<subscription_id>/history")
class SubscriptionHistoryList(MethodView):
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, HistoryListSchema)
    @blp.problems(400, 401, 403, 404, 422, 429)
    @requires("subscriptions", "read")
    def get(self, args: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        """The subscription's history, newest first (append-only)."""
        sub = services.get_subscription(session(), subscription_id)
        rows, has_more = queries.list_history(
            session(), sub.id, limit=args["limit"], starting_after=args["starting_after"]
        )
        return list_envelope(request.path, rows, has_more)


@blp.route("/<subscription_id>/charges")
class SubscriptionChargeList(MethodView):
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, ChargeListSchema)
    @blp.problems(400, 401, 403, 404, 422, 429)
    @requires("subscriptions", "read")
    def get(self, args: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        """What the subscription owes or is owed (recurring charges, proration lines)."""
        sub = services.get_subscription(session(), subscription_id)
        rows, has_more = queries.list_charges(
            session(), sub.id, limit=args["limit"], starting_after=args["starting_after"]
        )
        return list_envelope(request.path, rows, has_more)
